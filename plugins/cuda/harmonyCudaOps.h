/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C ABI of libharmony_cuda_ops.so: the plugin kernels launched without TensorRT, on device
 * pointers and a caller's stream (src/harmony/plugins/cuda.py calls them from PyTorch through
 * ctypes). Tensors are linear NCHW, all of one data type (FP32 or FP16); the math is FP32, as
 * in the TensorRT plugins. Nothing is allocated or synchronised here, so the launches can be
 * captured in a CUDA graph. Every function returns 0 on success, 1 for invalid arguments or 2
 * for a CUDA error otherwise; harmonyCudaLastError() then says what went wrong.
 */
#ifndef HARMONY_CUDA_OPS_H
#define HARMONY_CUDA_OPS_H

#include <stdint.h>

#define HARMONY_CUDA_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C"
{
#endif

    //! Element types of the tensors (argument `dataType`).
    enum HarmonyCudaDataType
    {
        kHarmonyCudaFloat32 = 0,
        kHarmonyCudaFloat16 = 1
    };

    //! image [B,3,H,W], mask [B,1,H,W], knots [B,3,9,h,w], curve [B,3,8,h,w] -> out [B,3,H,W].
    //! `stream` is a cudaStream_t (NULL: the legacy default stream).
    HARMONY_CUDA_API int32_t harmonyCudaCascadedLut3D(int32_t dataType, void const* image, void const* mask,
        void const* knots, void const* curve, void* out, int32_t batch, int32_t height, int32_t width,
        int32_t mapHeight, int32_t mapWidth, void* stream);

    //! Bytes of device workspace harmonyCudaKnnTopkFusion needs: O(B * N * k), never N x N.
    HARMONY_CUDA_API uint64_t harmonyCudaKnnTopkFusionWorkspaceSize(int32_t batch, int32_t nbPositions, int32_t k);

    //! features [B,C,N], mask [B,1,N] -> fused [B,C,N]; `workspace` (256-byte aligned) holds
    //! `workspaceBytes` >= harmonyCudaKnnTopkFusionWorkspaceSize(batch, nbPositions, k).
    HARMONY_CUDA_API int32_t harmonyCudaKnnTopkFusion(int32_t dataType, void const* features, void const* mask,
        void* out, void* workspace, uint64_t workspaceBytes, int32_t batch, int32_t channels, int32_t nbPositions,
        int32_t k, void* stream);

    //! 0 when the kernels can run on the current device; else 2 and the
    //! reason in harmonyCudaLastError() (no device, a driver older than this build's CUDA
    //! runtime, a GPU architecture the build does not cover).
    HARMONY_CUDA_API int32_t harmonyCudaProbe(void);

    //! Message of the last failed call on this thread ("" if none).
    HARMONY_CUDA_API char const* harmonyCudaLastError(void);

#ifdef __cplusplus
}
#endif

#endif // HARMONY_CUDA_OPS_H
