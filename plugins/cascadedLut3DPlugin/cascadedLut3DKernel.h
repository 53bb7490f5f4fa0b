/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Launcher of the CascadedLut3D kernel (declared here once, defined in cascadedLut3DKernel.cu).
 */
#ifndef HARMONY_CASCADED_LUT_3D_KERNEL_H
#define HARMONY_CASCADED_LUT_3D_KERNEL_H

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace harmony
{

//! One pass over the output: image [B,3,H,W], mask [B,1,H,W], knots [B,3,9,h,w], curve [B,3,8,h,w]
//! -> out [B,3,H,W], all of type T (float or __half), linear NCHW; math in FP32.
//! Limits: B <= 65535. Returns the launch status (cudaSuccess on success).
template <typename T>
cudaError_t launchCascadedLut3D(T const* image, T const* mask, T const* knots, T const* curve, T* out, int32_t batch,
    int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth, cudaStream_t stream);

//! Loads the kernel's code for the current device: cudaSuccess where it can run, else the reason
//! (a driver older than this build's CUDA runtime, a GPU architecture the build does not cover).
cudaError_t probeCascadedLut3D();

extern template cudaError_t launchCascadedLut3D<float>(float const*, float const*, float const*, float const*, float*,
    int32_t, int32_t, int32_t, int32_t, int32_t, cudaStream_t);
extern template cudaError_t launchCascadedLut3D<__half>(__half const*, __half const*, __half const*, __half const*,
    __half*, int32_t, int32_t, int32_t, int32_t, int32_t, cudaStream_t);

} // namespace harmony

#endif // HARMONY_CASCADED_LUT_3D_KERNEL_H
