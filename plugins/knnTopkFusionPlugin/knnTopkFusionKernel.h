/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Launcher of the KnnTopkFusion kernels (declared here once, defined in knnTopkFusionKernel.cu).
 */
#ifndef HARMONY_KNN_TOPK_FUSION_KERNEL_H
#define HARMONY_KNN_TOPK_FUSION_KERNEL_H

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace harmony
{

//! Bytes of device workspace launchKnnTopkFusion needs: O(B * N * k), never N x N.
size_t knnTopkFusionWorkspaceSize(int32_t batch, int32_t nbPositions, int32_t k);

//! features [B,C,N], mask [B,1,N] -> fused [B,C,N], all of type T (float or __half), linear;
//! dot products, top-k, softmax and the weighted sum in FP32. `workspace` holds at least
//! knnTopkFusionWorkspaceSize(batch, nbPositions, k) bytes, 256-byte aligned.
//! Limits: 1 <= k <= min(32, N), B <= 65535. Returns the launch status (cudaSuccess on success).
template <typename T>
cudaError_t launchKnnTopkFusion(T const* features, T const* mask, T* out, void* workspace, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, cudaStream_t stream);

//! Loads the kernels' code for the current device: cudaSuccess where they can run, else the
//! reason (a driver older than this build's CUDA runtime, a GPU architecture not built for).
cudaError_t probeKnnTopkFusion();

extern template cudaError_t launchKnnTopkFusion<float>(
    float const*, float const*, float*, void*, int32_t, int32_t, int32_t, int32_t, cudaStream_t);
extern template cudaError_t launchKnnTopkFusion<__half>(
    __half const*, __half const*, __half*, void*, int32_t, int32_t, int32_t, int32_t, cudaStream_t);

} // namespace harmony

#endif // HARMONY_KNN_TOPK_FUSION_KERNEL_H
