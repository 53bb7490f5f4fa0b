/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The two fused ops on the CPU, in FP32, NCHW contiguous: what libharmony_cpu_ops.so (C ABI,
 * std::thread) and libharmony_ort_ops.so (ONNX Runtime custom ops, ORT's thread pool) both run.
 * Every value is computed by the HARMONY_HD functions of the *Math.h headers that the CUDA
 * kernels use; the LUT in the same order (the same bits as the GPU), the KNN's dot products as
 * an FMA GEMM (harmonyCpuKnn.cpp). Both CPU libraries give the same bits. Arguments are checked
 * by the callers (common/cAbi.h); these functions only compute.
 */
#ifndef HARMONY_CPU_KERNELS_H
#define HARMONY_CPU_KERNELS_H

#include <cstdint>
#include <functional>

namespace harmony
{
namespace cpu
{

//! Runs body(i) for every i in [0, total), possibly concurrently, and returns when all are done.
using ParallelFor = std::function<void(int64_t total, std::function<void(int64_t)> const& body)>;

//! A ParallelFor on std::threads (as many as the hardware has, at most `total`).
ParallelFor threadParallelFor();

//! image [B,3,H,W], mask [B,1,H,W], knots [B,3,9,h,w], curve [B,3,8,h,w] -> out [B,3,H,W].
void cascadedLut3D(float const* image, float const* mask, float const* knots, float const* curve, float* out,
    int32_t batch, int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth, ParallelFor const& parallel);

//! features [B,C,N], mask [B,1,N] -> top-k values and support indices [B,N,k] (query, rank).
void knnTopk(float const* features, float const* mask, float* values, int32_t* indices, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, ParallelFor const& parallel);

//! features [B,C,N], mask [B,1,N] -> fused [B,C,N], with O(N * (C + k)) scratch.
void knnTopkFusion(float const* features, float const* mask, float* out, int32_t batch, int32_t channels,
    int32_t nbPositions, int32_t k, ParallelFor const& parallel);

} // namespace cpu
} // namespace harmony

#endif // HARMONY_CPU_KERNELS_H
