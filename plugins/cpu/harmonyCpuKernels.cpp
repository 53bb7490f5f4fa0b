/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CPU kernels of harmonyCpuKernels.h: the thread pool and CascadedLut3D (KnnTopkFusion is in
 * harmonyCpuKnn.cpp). The loops only walk the tensors; every value comes from the HARMONY_HD
 * functions of cascadedLut3DMath.h, built without FMA contraction like the CUDA kernels.
 */
#include "cpu/harmonyCpuKernels.h"

#include "cascadedLut3DPlugin/cascadedLut3DMath.h"
#include "common/harmonyContract.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace harmony
{
namespace cpu
{
ParallelFor threadParallelFor()
{
    return [](int64_t total, std::function<void(int64_t)> const& body) {
        int64_t const workers
            = std::min<int64_t>(total, std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency())));
        std::atomic<int64_t> next{0};
        std::exception_ptr error;
        std::mutex errorMutex;
        auto work = [&]() {
            try
            {
                for (int64_t i = next++; i < total; i = next++)
                {
                    body(i);
                }
            }
            catch (...)
            {
                std::lock_guard<std::mutex> lock(errorMutex);
                error = error ? error : std::current_exception();
                next = total;
            }
        };
        std::vector<std::thread> threads;
        for (int64_t w = 1; w < workers; ++w)
        {
            threads.emplace_back(work);
        }
        work();
        for (std::thread& thread : threads)
        {
            thread.join();
        }
        if (error)
        {
            std::rethrow_exception(error);
        }
    };
}

void cascadedLut3D(float const* image, float const* mask, float const* knots, float const* curve, float* out,
    int32_t batch, int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth, ParallelFor const& parallel)
{
    using namespace contract;
    int64_t const pixels = static_cast<int64_t>(height) * width;
    int64_t const planeStride = static_cast<int64_t>(mapHeight) * mapWidth;
    float const rowStep = lutGridStep(height);
    float const colStep = lutGridStep(width);
    std::vector<SpatialTap> colTaps(static_cast<size_t>(width));
    for (int32_t j = 0; j < width; ++j)
    {
        colTaps[j] = lutSpatialTap(j, colStep, mapWidth);
    }
    // One task per output row of one channel of one batch element.
    parallel(static_cast<int64_t>(batch) * kLutChannels * height, [&](int64_t task) {
        int64_t const bc = task / height;
        int32_t const i = static_cast<int32_t>(task % height);
        float const* m = mask + (bc / kLutChannels) * pixels;
        float const* x = image + bc * pixels;
        float* y = out + bc * pixels;
        float const* bcKnots = knots + bc * kLutKnots * planeStride;
        float const* bcCurve = curve + bc * kLutCurvePoints * planeStride;
        SpatialTap const row = lutSpatialTap(i, rowStep, mapHeight);
        for (int32_t j = 0; j < width; ++j)
        {
            int64_t const p = static_cast<int64_t>(i) * width + j;
            y[p] = cascadedLutPixel(x[p], m[p], bcKnots, bcCurve, planeStride, mapWidth, row, colTaps[j]);
        }
    });
}

} // namespace cpu
} // namespace harmony
