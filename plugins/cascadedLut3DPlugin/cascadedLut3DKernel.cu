/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CascadedLut3D: one thread per output pixel (b, i, j) and all three channels. The thread
 * computes its own spatial taps and samples only the 2 x 2 knot planes around its value in each
 * curve (16 map reads per channel). The maps, [B,3,17,h,w], are tiny next to the image and stay
 * in L1/L2 through the read-only path; no intermediate grid is ever written.
 */
#include "cascadedLut3DPlugin/cascadedLut3DKernel.h"
#include "cascadedLut3DPlugin/cascadedLut3DMath.h"

namespace harmony
{
namespace
{

constexpr int32_t kThreadsPerBlock{128};

template <typename T>
__global__ void cascadedLut3DKernel(T const* __restrict__ image, T const* __restrict__ mask,
    T const* __restrict__ knots, T const* __restrict__ curve, T* __restrict__ out, int32_t height, int32_t width,
    int32_t mapHeight, int32_t mapWidth, float rowStep, float colStep)
{
    int32_t const j = static_cast<int32_t>(blockIdx.x) * kThreadsPerBlock + static_cast<int32_t>(threadIdx.x);
    if (j >= width)
    {
        return;
    }
    int64_t const b = blockIdx.z;
    int64_t const pixels = static_cast<int64_t>(height) * width;
    int64_t const planeStride = static_cast<int64_t>(mapHeight) * mapWidth;
    SpatialTap const col = lutSpatialTap(j, colStep, mapWidth);
    for (int32_t i = blockIdx.y; i < height; i += gridDim.y)
    {
        SpatialTap const row = lutSpatialTap(i, rowStep, mapHeight);
        int64_t const p = static_cast<int64_t>(i) * width + j;
        float const m = toFloat(mask[b * pixels + p]);
#pragma unroll
        for (int32_t c = 0; c < contract::kLutChannels; ++c)
        {
            int64_t const bc = b * contract::kLutChannels + c;
            float const x = toFloat(image[bc * pixels + p]);
            float const y = cascadedLutPixel(x, m, knots + bc * contract::kLutKnots * planeStride,
                curve + bc * contract::kLutCurvePoints * planeStride, planeStride, mapWidth, row, col);
            out[bc * pixels + p] = static_cast<T>(y);
        }
    }
}

} // namespace

template <typename T>
cudaError_t launchCascadedLut3D(T const* image, T const* mask, T const* knots, T const* curve, T* out, int32_t batch,
    int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth, cudaStream_t stream)
{
    if (batch <= 0 || height <= 0 || width <= 0 || mapHeight <= 0 || mapWidth <= 0 || batch > kMaxGridDim)
    {
        return cudaErrorInvalidValue;
    }
    dim3 const block(kThreadsPerBlock);
    dim3 const grid((width + kThreadsPerBlock - 1) / kThreadsPerBlock, height < kMaxGridDim ? height : kMaxGridDim, batch);
    cascadedLut3DKernel<T><<<grid, block, 0, stream>>>(image, mask, knots, curve, out, height, width, mapHeight,
        mapWidth, lutGridStep(height), lutGridStep(width));
    return cudaGetLastError();
}

cudaError_t probeCascadedLut3D()
{
    cudaFuncAttributes attributes{};
    cudaError_t const status = cudaFuncGetAttributes(&attributes, cascadedLut3DKernel<float>);
    return status != cudaSuccess ? status : cudaFuncGetAttributes(&attributes, cascadedLut3DKernel<__half>);
}

template cudaError_t launchCascadedLut3D<float>(float const*, float const*, float const*, float const*, float*, int32_t,
    int32_t, int32_t, int32_t, int32_t, cudaStream_t);
template cudaError_t launchCascadedLut3D<__half>(__half const*, __half const*, __half const*, __half const*, __half*,
    int32_t, int32_t, int32_t, int32_t, int32_t, cudaStream_t);

} // namespace harmony
