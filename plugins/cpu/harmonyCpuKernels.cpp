/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CPU kernels of harmonyCpuKernels.h. The loops only walk the tensors; every value comes from the
 * HARMONY_HD functions of the *Math.h headers.
 *
 * KnnTopkFusion scores 8 queries against 8 supports at a time with vector arithmetic: each lane
 * accumulates one dot product over the channels in channel order, multiply then add (the build
 * forbids FMA contraction), exactly the sequence of the scalar loop, so the scores are the same
 * bits. The supports are packed once per batch element as [N/8][C][8] and visited in blocks
 * that stay in cache while every query group of a task passes over them.
 */
#include "cpu/harmonyCpuKernels.h"

#include "cascadedLut3DPlugin/cascadedLut3DMath.h"
#include "common/harmonyContract.h"
#include "knnTopkFusionPlugin/knnTopkFusionMath.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace harmony
{
namespace cpu
{
namespace
{

using Vec = float __attribute__((vector_size(32)));
constexpr int32_t kLanes{8};          // supports per vector
constexpr int32_t kGroup{8};          // queries scored together, one accumulator each
constexpr int32_t kGroupsPerTask{8};  // query groups per parallel task
constexpr int32_t kSupportBlock{32};  // support vectors per cache block
constexpr int32_t kFusePositions{256}; // positions per parallel task of the weighted sum

int64_t ceilDiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

//! Supports x * (1 - m) of one batch element, packed [ceil(N/8)][C][8]; lanes past N hold 0.
std::vector<float> packSupports(
    float const* x, float const* m, int32_t channels, int32_t nbPositions, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    int64_t const vectors = ceilDiv(n, kLanes);
    std::vector<float> packed(static_cast<size_t>(vectors * channels * kLanes), 0.F);
    parallel(vectors, [&](int64_t v) {
        float* out = packed.data() + v * channels * kLanes;
        int64_t const lanes = std::min<int64_t>(kLanes, n - v * kLanes);
        for (int32_t c = 0; c < channels; ++c)
        {
            for (int64_t lane = 0; lane < lanes; ++lane)
            {
                int64_t const s = v * kLanes + lane;
                out[c * kLanes + lane] = knnSupport(x[c * n + s], m[s]);
            }
        }
    });
    return packed;
}

//! Positions whose query x * m has a non-zero element (the others take knnTopkInactive).
std::vector<int32_t> activeQueries(float const* x, float const* m, int32_t channels, int32_t nbPositions)
{
    int64_t const n = nbPositions;
    std::vector<char> active(static_cast<size_t>(n), 0);
    for (int32_t c = 0; c < channels; ++c)
    {
        for (int64_t q = 0; q < n; ++q)
        {
            active[q] = active[q] || knnQuery(x[c * n + q], m[q]) != 0.F;
        }
    }
    std::vector<int32_t> positions;
    for (int32_t q = 0; q < nbPositions; ++q)
    {
        if (active[q])
        {
            positions.push_back(q);
        }
    }
    return positions;
}

//! Top-k of one batch element: values/indices [N, k] row-major (query, rank).
void knnTopkOne(float const* x, float const* m, float* values, int32_t* indices, int32_t channels,
    int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    std::vector<int32_t> const queries = activeQueries(x, m, channels, nbPositions);
    for (int32_t q = 0, next = 0; q < nbPositions; ++q)
    {
        if (next < static_cast<int32_t>(queries.size()) && queries[next] == q)
        {
            knnTopkReset(values + q * static_cast<int64_t>(k), indices + q * static_cast<int64_t>(k), k);
            ++next;
        }
        else
        {
            knnTopkInactive(values + q * static_cast<int64_t>(k), indices + q * static_cast<int64_t>(k), k);
        }
    }
    if (queries.empty())
    {
        return;
    }
    std::vector<float> const supports = packSupports(x, m, channels, nbPositions, parallel);
    int64_t const vectors = ceilDiv(n, kLanes);
    int64_t const groups = ceilDiv(static_cast<int64_t>(queries.size()), kGroup);
    int64_t const tasks = ceilDiv(groups, kGroupsPerTask);
    parallel(tasks, [&](int64_t task) {
        int64_t const firstGroup = task * kGroupsPerTask;
        int64_t const nbGroups = std::min<int64_t>(kGroupsPerTask, groups - firstGroup);
        // Queries of the task's groups, packed [group][C][8]; lanes past the last query hold 0.
        std::vector<float> packed(static_cast<size_t>(nbGroups * channels * kGroup), 0.F);
        for (int64_t g = 0; g < nbGroups; ++g)
        {
            for (int32_t i = 0; i < kGroup; ++i)
            {
                int64_t const slot = (firstGroup + g) * kGroup + i;
                if (slot >= static_cast<int64_t>(queries.size()))
                {
                    break;
                }
                int32_t const q = queries[slot];
                for (int32_t c = 0; c < channels; ++c)
                {
                    packed[(g * channels + c) * kGroup + i] = knnQuery(x[c * n + q], m[q]);
                }
            }
        }
        for (int64_t v0 = 0; v0 < vectors; v0 += kSupportBlock)
        {
            int64_t const v1 = std::min<int64_t>(v0 + kSupportBlock, vectors);
            for (int64_t g = 0; g < nbGroups; ++g)
            {
                float const* groupQueries = packed.data() + g * channels * kGroup;
                int64_t const firstSlot = (firstGroup + g) * kGroup;
                int64_t const nbQueries = std::min<int64_t>(kGroup, static_cast<int64_t>(queries.size()) - firstSlot);
                for (int64_t v = v0; v < v1; ++v)
                {
                    float const* vectorSupports = supports.data() + v * channels * kLanes;
                    Vec dots[kGroup] = {};
                    for (int32_t c = 0; c < channels; ++c)
                    {
                        Vec support;
                        std::memcpy(&support, vectorSupports + c * kLanes, sizeof(Vec));
                        float const* query = groupQueries + c * kGroup;
                        for (int32_t i = 0; i < kGroup; ++i)
                        {
                            dots[i] = dots[i] + query[i] * support;
                        }
                    }
                    int64_t const lanes = std::min<int64_t>(kLanes, n - v * kLanes);
                    for (int64_t i = 0; i < nbQueries; ++i)
                    {
                        int64_t const q = queries[firstSlot + i];
                        for (int64_t lane = 0; lane < lanes; ++lane)
                        {
                            knnTopkInsert(values + q * k, indices + q * k, k, dots[i][lane],
                                static_cast<int32_t>(v * kLanes + lane));
                        }
                    }
                }
            }
        }
    });
}

//! Softmax-weighted sum of the selected supports of one batch element into out [C, N].
void knnFuseOne(float const* x, float const* m, float const* values, int32_t const* indices, float* out,
    int32_t channels, int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    std::vector<float> rowMax(static_cast<size_t>(k));
    std::vector<float> rowSum(static_cast<size_t>(k));
    for (int32_t r = 0; r < k; ++r)
    {
        float const* row = values + knnViewOffset(r, 0, nbPositions);
        float maximum = row[0];
        for (int64_t p = 1; p < n; ++p)
        {
            maximum = row[p] > maximum ? row[p] : maximum;
        }
        float sum = 0.F;
        for (int64_t p = 0; p < n; ++p)
        {
            sum += knnSoftmaxTerm(row[p], maximum);
        }
        rowMax[r] = maximum;
        rowSum[r] = sum;
    }
    parallel(ceilDiv(n, kFusePositions), [&](int64_t task) {
        std::vector<float> weights(static_cast<size_t>(k));
        std::vector<int32_t> support(static_cast<size_t>(k));
        int64_t const end = std::min<int64_t>(n, (task + 1) * kFusePositions);
        for (int64_t p = task * kFusePositions; p < end; ++p)
        {
            for (int32_t r = 0; r < k; ++r)
            {
                int64_t const f = knnViewOffset(r, static_cast<int32_t>(p), nbPositions);
                weights[r] = knnSoftmaxWeight(values[f], rowMax[r], rowSum[r]);
                support[r] = indices[f];
            }
            for (int32_t c = 0; c < channels; ++c)
            {
                float acc = 0.F;
                for (int32_t r = 0; r < k; ++r)
                {
                    int32_t const j = support[r];
                    acc += weights[r] * knnSupport(x[c * n + j], m[j]);
                }
                out[c * n + p] = acc;
            }
        }
    });
}

} // namespace

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

void knnTopk(float const* features, float const* mask, float* values, int32_t* indices, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    for (int32_t b = 0; b < batch; ++b)
    {
        knnTopkOne(features + b * channels * n, mask + b * n, values + b * n * k, indices + b * n * k, channels,
            nbPositions, k, parallel);
    }
}

void knnTopkFusion(float const* features, float const* mask, float* out, int32_t batch, int32_t channels,
    int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    std::vector<float> values(static_cast<size_t>(n * k));
    std::vector<int32_t> indices(static_cast<size_t>(n * k));
    for (int32_t b = 0; b < batch; ++b)
    {
        float const* x = features + b * channels * n;
        float const* m = mask + b * n;
        knnTopkOne(x, m, values.data(), indices.data(), channels, nbPositions, k, parallel);
        knnFuseOne(x, m, values.data(), indices.data(), out + b * channels * n, channels, nbPositions, k, parallel);
    }
}

} // namespace cpu
} // namespace harmony
