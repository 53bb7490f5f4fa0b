/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C ABI of libharmony_cpu_ops.so: the two fused ops on the CPU, in FP32, NCHW contiguous,
 * computed with the same per-element functions as the CUDA kernels (the *Math.h headers).
 * Loaded by src/harmony/plugins/cpu.py through ctypes. Every function returns 0 on success and
 * a non-zero status on invalid arguments; harmonyCpuLastError() then says what was wrong.
 */
#ifndef HARMONY_CPU_OPS_H
#define HARMONY_CPU_OPS_H

#include <stdint.h>

#define HARMONY_CPU_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C"
{
#endif

    //! image [B,3,H,W], mask [B,1,H,W], knots [B,3,9,h,w], curve [B,3,8,h,w] -> out [B,3,H,W].
    HARMONY_CPU_API int32_t harmonyCascadedLut3DFloat(float const* image, float const* mask, float const* knots,
        float const* curve, float* out, int32_t batch, int32_t height, int32_t width, int32_t mapHeight,
        int32_t mapWidth);

    //! features [B,C,N], mask [B,1,N] -> top-k values [B,N,k] and support indices [B,N,k] (int32).
    HARMONY_CPU_API int32_t harmonyKnnTopkFloat(float const* features, float const* mask, float* values,
        int32_t* indices, int32_t batch, int32_t channels, int32_t nbPositions, int32_t k);

    //! features [B,C,N], mask [B,1,N] -> fused [B,C,N].
    HARMONY_CPU_API int32_t harmonyKnnTopkFusionFloat(float const* features, float const* mask, float* out,
        int32_t batch, int32_t channels, int32_t nbPositions, int32_t k);

    //! Message of the last failed call on this thread ("" if none).
    HARMONY_CPU_API char const* harmonyCpuLastError(void);

#ifdef __cplusplus
}
#endif

#endif // HARMONY_CPU_OPS_H
