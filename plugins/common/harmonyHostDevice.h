/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * HARMONY_HD marks the per-element math shared by the CUDA kernels and the g++-only CPU
 * library, so both compile the very same functions.
 */
#ifndef HARMONY_HOST_DEVICE_H
#define HARMONY_HOST_DEVICE_H

#include <cstdint>

#if defined(__CUDACC__)
#define HARMONY_HD __host__ __device__ __forceinline__
#else
#define HARMONY_HD inline
#endif

namespace harmony
{

//! Largest gridDim.y and gridDim.z of a launch: the batch (and the KNN channel count) become grid
//! dimensions, so they are refused above this.
constexpr int32_t kMaxGridDim{65535};

//! Load any element type (float, or __half in CUDA code) as float; the math always runs in FP32.
template <typename T>
HARMONY_HD float toFloat(T value)
{
    return static_cast<float>(value);
}

//! clamp(v, 0, 1) with the comparison order of torch.clamp.
HARMONY_HD float clamp01(float v)
{
    return v < 0.F ? 0.F : (v > 1.F ? 1.F : v);
}

HARMONY_HD int32_t minInt(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

HARMONY_HD int32_t maxInt(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

} // namespace harmony

#endif // HARMONY_HOST_DEVICE_H
