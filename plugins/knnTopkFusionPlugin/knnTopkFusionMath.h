/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Per-element arithmetic of KnnTopkFusion, shared verbatim by the CUDA kernels
 * (knnTopkFusionKernel.cu) and the CPU library (cpu/harmonyCpuKnn.cpp).
 *
 * Semantics (src/harmony/ops/knn_topk_fusion.py), per batch element with N = h*w positions:
 *   Q = x * m, S = x * (1 - m)                         both [C, N]
 *   (a, j) = top-k of Q^T S per query row              [N, k], ties -> lowest support index
 *   all-zero query rows: a = 0, j = 0..k-1 (no dot products computed)
 *   the row-major (query, rank) buffer of N*k values is *viewed* as [k, N]:
 *     flat f = q * k + rank,  view row r = f / N,  view column n = f % N
 *   w[r, n] = softmax over n of view row r;  R[:, n] = sum_r w[r, n] * S[:, j_flat(r * N + n)]
 */
#ifndef HARMONY_KNN_TOPK_FUSION_MATH_H
#define HARMONY_KNN_TOPK_FUSION_MATH_H

#include "common/harmonyHostDevice.h"

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace harmony
{

//! Query element of a position: x * m.
HARMONY_HD float knnQuery(float x, float m)
{
    return x * m;
}

//! Support element of a position: x * (1 - m).
HARMONY_HD float knnSupport(float x, float m)
{
    return x * (1.F - m);
}

//! Candidate order of the top-k: larger value first, equal values -> lower support index first.
//! NaN ranks above every number (as in torch.sort / torch.topk / torch.max), NaNs among themselves
//! by index, so the order is total and every candidate beats the reset entry (-inf, INT32_MAX):
//! the running list always ends up holding k real support indices, whatever the values.
HARMONY_HD bool knnIsBetter(float value, int32_t index, float otherValue, int32_t otherIndex)
{
    bool const isNan = value != value;
    bool const otherIsNan = otherValue != otherValue;
    if (isNan || otherIsNan)
    {
        return isNan && (!otherIsNan || index < otherIndex);
    }
    return value > otherValue || (value == otherValue && index < otherIndex);
}

//! Initial running list of an active query: worse than any real candidate (-inf included).
HARMONY_HD void knnTopkReset(float* values, int32_t* indices, int32_t k)
{
    for (int32_t r = 0; r < k; ++r)
    {
        values[r] = -INFINITY;
        indices[r] = 0x7FFFFFFF;
    }
}

//! Result of an all-zero query row (every dot product is 0): values 0 at indices 0..k-1.
HARMONY_HD void knnTopkInactive(float* values, int32_t* indices, int32_t k)
{
    for (int32_t r = 0; r < k; ++r)
    {
        values[r] = 0.F;
        indices[r] = r;
    }
}

//! Insert a candidate into a sorted (best first) list of k entries; a no-op if it is not better
//! than the current k-th entry. The order does not depend on the order candidates arrive in.
HARMONY_HD void knnTopkInsert(float* values, int32_t* indices, int32_t k, float value, int32_t index)
{
    if (!knnIsBetter(value, index, values[k - 1], indices[k - 1]))
    {
        return;
    }
    int32_t slot = k - 1;
    while (slot > 0 && knnIsBetter(value, index, values[slot - 1], indices[slot - 1]))
    {
        values[slot] = values[slot - 1];
        indices[slot] = indices[slot - 1];
        --slot;
    }
    values[slot] = value;
    indices[slot] = index;
}

//! Flat (query, rank) offset of column n of view row r of the official [k, N] view.
HARMONY_HD int64_t knnViewOffset(int32_t viewRow, int32_t position, int32_t nbPositions)
{
    return static_cast<int64_t>(viewRow) * nbPositions + position;
}

//! Softmax weight of value v in a view row of maximum `rowMax` and sum of exp(v - rowMax) `rowSum`.
HARMONY_HD float knnSoftmaxWeight(float value, float rowMax, float rowSum)
{
    return expf(value - rowMax) / rowSum;
}

//! One term of the softmax denominator.
HARMONY_HD float knnSoftmaxTerm(float value, float rowMax)
{
    return expf(value - rowMax);
}

} // namespace harmony

#endif // HARMONY_KNN_TOPK_FUSION_MATH_H
