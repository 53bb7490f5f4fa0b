/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Per-pixel arithmetic of CascadedLut3D, shared verbatim by the CUDA kernel
 * (cascadedLut3DKernel.cu) and the CPU library (cpu/harmonyCpuOps.cpp).
 *
 * Semantics (src/harmony/ops/lut.py, the official grid_sample chain): the pixel (i, j) of an
 * H x W image sits at map position u = ((g + 1) / 2) * (h - 1) with g = i * (2 / (H - 1)) - 1
 * in float32, as grid_sample(align_corners=True) unnormalizes the reference's grid (exactly
 * i * (h - 1) / (H - 1) in real arithmetic; the float32 rounding matters where pixels and map
 * entries coincide and the curves are steep), v likewise; each knot plane is sampled
 * bilinearly there (the upper neighbour clamped at the border). Only the two knot planes
 * around the pixel's value are sampled, for each of the two curves.
 */
#ifndef HARMONY_CASCADED_LUT_3D_MATH_H
#define HARMONY_CASCADED_LUT_3D_MATH_H

#include "common/harmonyContract.h"
#include "common/harmonyHostDevice.h"

#include <cstdint>

namespace harmony
{

//! Lower/upper map index and fraction of one output coordinate.
struct SpatialTap
{
    int32_t lower;
    int32_t upper;
    float frac;
};

//! Step of the reference's normalized grid on an axis of `outSize` pixels, computed once per
//! launch: 2 / (outSize - 1) in double, rounded to float as PyTorch does for a Python scalar
//! multiplied with a float32 tensor (0 when outSize == 1: the grid is just -1).
HARMONY_HD float lutGridStep(int32_t outSize)
{
    return outSize > 1 ? static_cast<float>(2.0 / static_cast<double>(outSize - 1)) : 0.F;
}

//! Tap of output coordinate `outPos` on a map axis of `mapSize` entries, with the grid value
//! g = outPos * step - 1 unnormalized as grid_sample does (align_corners=True, border clip).
HARMONY_HD SpatialTap lutSpatialTap(int32_t outPos, float step, int32_t mapSize)
{
    float const g = static_cast<float>(outPos) * step - 1.F;
    float const last = static_cast<float>(mapSize - 1);
    float const unclipped = ((g + 1.F) / 2.F) * last;
    float const pos = unclipped < 0.F ? 0.F : (unclipped > last ? last : unclipped);
    // pos >= 0, so truncation is floor.
    int32_t const lower = minInt(static_cast<int32_t>(pos), maxInt(mapSize - 2, 0));
    SpatialTap tap;
    tap.lower = lower;
    tap.upper = minInt(lower + 1, mapSize - 1);
    tap.frac = pos - static_cast<float>(lower);
    return tap;
}

//! Bilinear sample of one [h, w] plane: rows first, then columns (the reference's order).
template <typename T>
HARMONY_HD float lutBilinear(T const* plane, int32_t mapWidth, SpatialTap const& row, SpatialTap const& col)
{
    float const fr = row.frac;
    float const fc = col.frac;
    T const* rowLo = plane + static_cast<int64_t>(row.lower) * mapWidth;
    T const* rowHi = plane + static_cast<int64_t>(row.upper) * mapWidth;
    float const left = toFloat(rowLo[col.lower]) * (1.F - fr) + toFloat(rowHi[col.lower]) * fr;
    float const right = toFloat(rowLo[col.upper]) * (1.F - fr) + toFloat(rowHi[col.upper]) * fr;
    return left * (1.F - fc) + right * fc;
}

//! Piecewise-linear curve of `nbPoints` planes (plane stride h*w) evaluated at value `x`,
//! sampling only the two planes that bracket clamp(x, 0, 1) * (nbPoints - 1).
template <typename T>
HARMONY_HD float lutCurve(float x, T const* planes, int32_t nbPoints, int64_t planeStride, int32_t mapWidth,
    SpatialTap const& row, SpatialTap const& col)
{
    float const pos = clamp01(x) * static_cast<float>(nbPoints - 1);
    // clamp01 passes NaN through, and converting NaN to int is undefined on the host (INT32_MIN on
    // x86: an out-of-bounds plane). `pos > 0` is false for NaN: plane 0, and the NaN propagates
    // through `frac` into the result, as it does through the reference's interpolation weights.
    int32_t const lower = pos > 0.F ? minInt(static_cast<int32_t>(pos), nbPoints - 2) : 0;
    float const frac = pos - static_cast<float>(lower);
    float const lo = lutBilinear(planes + lower * planeStride, mapWidth, row, col);
    float const hi = lutBilinear(planes + (lower + 1) * planeStride, mapWidth, row, col);
    return lo + (hi - lo) * frac;
}

//! One output value: clamp(curve(knots(x)), 0, 1) * m + x * (1 - m).
//! `knots` points at the 9 planes of the pixel's batch/channel, `curve` at its 8 planes.
template <typename T>
HARMONY_HD float cascadedLutPixel(float x, float m, T const* knots, T const* curve, int64_t planeStride,
    int32_t mapWidth, SpatialTap const& row, SpatialTap const& col)
{
    float const xHat = lutCurve(x, knots, contract::kLutKnots, planeStride, mapWidth, row, col);
    float const y = lutCurve(xHat, curve, contract::kLutCurvePoints, planeStride, mapWidth, row, col);
    return clamp01(y) * m + x * (1.F - m);
}

} // namespace harmony

#endif // HARMONY_CASCADED_LUT_3D_MATH_H
