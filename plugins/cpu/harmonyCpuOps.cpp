/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CPU implementation of the C ABI in harmonyCpuOps.h. The loops here only walk the tensors;
 * every value is computed by the HARMONY_HD functions the CUDA kernels use.
 */
#include "cpu/harmonyCpuOps.h"

#include "cascadedLut3DPlugin/cascadedLut3DMath.h"
#include "common/cAbi.h"
#include "common/harmonyContract.h"
#include "knnTopkFusionPlugin/knnTopkFusionMath.h"

#include <exception>
#include <string>
#include <vector>

namespace
{

using harmony::cAbiFail;

//! Top-k of batch element b: values/indices [N, k] row-major (query, rank).
void knnTopkOne(
    float const* x, float const* m, float* values, int32_t* indices, int32_t channels, int32_t nbPositions, int32_t k)
{
    using namespace harmony;
    int64_t const n = nbPositions;
    std::vector<float> query(static_cast<size_t>(channels));
    for (int32_t q = 0; q < nbPositions; ++q)
    {
        float* qValues = values + q * static_cast<int64_t>(k);
        int32_t* qIndices = indices + q * static_cast<int64_t>(k);
        bool active = false;
        for (int32_t c = 0; c < channels; ++c)
        {
            query[c] = knnQuery(x[c * n + q], m[q]);
            active = active || query[c] != 0.F;
        }
        if (!active)
        {
            knnTopkInactive(qValues, qIndices, k);
            continue;
        }
        knnTopkReset(qValues, qIndices, k);
        for (int32_t s = 0; s < nbPositions; ++s)
        {
            float dot = 0.F;
            for (int32_t c = 0; c < channels; ++c)
            {
                dot += query[c] * knnSupport(x[c * n + s], m[s]);
            }
            knnTopkInsert(qValues, qIndices, k, dot, s);
        }
    }
}

void knnFuseOne(float const* x, float const* m, float const* values, int32_t const* indices, float* out,
    int32_t channels, int32_t nbPositions, int32_t k)
{
    using namespace harmony;
    int64_t const n = nbPositions;
    std::vector<float> rowMax(static_cast<size_t>(k));
    std::vector<float> rowSum(static_cast<size_t>(k));
    for (int32_t r = 0; r < k; ++r)
    {
        float const* row = values + knnViewOffset(r, 0, nbPositions);
        float maximum = row[0];
        for (int32_t p = 1; p < nbPositions; ++p)
        {
            maximum = row[p] > maximum ? row[p] : maximum;
        }
        float sum = 0.F;
        for (int32_t p = 0; p < nbPositions; ++p)
        {
            sum += knnSoftmaxTerm(row[p], maximum);
        }
        rowMax[r] = maximum;
        rowSum[r] = sum;
    }
    for (int32_t p = 0; p < nbPositions; ++p)
    {
        for (int32_t c = 0; c < channels; ++c)
        {
            float acc = 0.F;
            for (int32_t r = 0; r < k; ++r)
            {
                int64_t const f = knnViewOffset(r, p, nbPositions);
                int32_t const j = indices[f];
                acc += knnSoftmaxWeight(values[f], rowMax[r], rowSum[r]) * knnSupport(x[c * n + j], m[j]);
            }
            out[c * n + p] = acc;
        }
    }
}

int32_t checkKnn(void const* features, void const* mask, void const* out, int32_t batch, int32_t channels,
    int32_t nbPositions, int32_t k)
{
    if (features == nullptr || mask == nullptr || out == nullptr)
    {
        return cAbiFail(std::string(harmony::contract::kKnnTopkFusionName) + ": null tensor pointer");
    }
    std::string error = harmony::knnArgumentError(batch, channels, nbPositions, k);
    return error.empty() ? 0 : cAbiFail(std::move(error));
}

} // namespace

extern "C" int32_t harmonyCascadedLut3DFloat(float const* image, float const* mask, float const* knots,
    float const* curve, float* out, int32_t batch, int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth)
{
    using namespace harmony;
    using namespace harmony::contract;
    try
    {
        if (image == nullptr || mask == nullptr || knots == nullptr || curve == nullptr || out == nullptr)
        {
            return cAbiFail(std::string(harmony::contract::kCascadedLutName) + ": null tensor pointer");
        }
        if (std::string error = cascadedLutArgumentError(batch, height, width, mapHeight, mapWidth); !error.empty())
        {
            return cAbiFail(std::move(error));
        }
        int64_t const pixels = static_cast<int64_t>(height) * width;
        int64_t const planeStride = static_cast<int64_t>(mapHeight) * mapWidth;
        float const rowStep = lutGridStep(height);
        float const colStep = lutGridStep(width);
        std::vector<SpatialTap> colTaps(static_cast<size_t>(width));
        for (int32_t j = 0; j < width; ++j)
        {
            colTaps[j] = lutSpatialTap(j, colStep, mapWidth);
        }
        for (int32_t b = 0; b < batch; ++b)
        {
            float const* m = mask + b * pixels;
            for (int32_t c = 0; c < kLutChannels; ++c)
            {
                int64_t const bc = static_cast<int64_t>(b) * kLutChannels + c;
                float const* x = image + bc * pixels;
                float* y = out + bc * pixels;
                float const* bcKnots = knots + bc * kLutKnots * planeStride;
                float const* bcCurve = curve + bc * kLutCurvePoints * planeStride;
                for (int32_t i = 0; i < height; ++i)
                {
                    SpatialTap const row = lutSpatialTap(i, rowStep, mapHeight);
                    for (int32_t j = 0; j < width; ++j)
                    {
                        int64_t const p = static_cast<int64_t>(i) * width + j;
                        y[p] = cascadedLutPixel(x[p], m[p], bcKnots, bcCurve, planeStride, mapWidth, row, colTaps[j]);
                    }
                }
            }
        }
        return 0;
    }
    catch (std::exception const& e)
    {
        return cAbiFail(std::string(harmony::contract::kCascadedLutName) + ": " + e.what());
    }
}

extern "C" int32_t harmonyKnnTopkFloat(float const* features, float const* mask, float* values, int32_t* indices,
    int32_t batch, int32_t channels, int32_t nbPositions, int32_t k)
{
    try
    {
        if (int32_t const status = checkKnn(features, mask, values, batch, channels, nbPositions, k))
        {
            return status;
        }
        if (indices == nullptr)
        {
            return cAbiFail(std::string(harmony::contract::kKnnTopkFusionName) + ": null indices pointer");
        }
        int64_t const n = nbPositions;
        for (int32_t b = 0; b < batch; ++b)
        {
            knnTopkOne(features + static_cast<int64_t>(b) * channels * n, mask + b * n, values + b * n * k,
                indices + b * n * k, channels, nbPositions, k);
        }
        return 0;
    }
    catch (std::exception const& e)
    {
        return cAbiFail(std::string(harmony::contract::kKnnTopkFusionName) + ": " + e.what());
    }
}

extern "C" int32_t harmonyKnnTopkFusionFloat(float const* features, float const* mask, float* out, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k)
{
    try
    {
        if (int32_t const status = checkKnn(features, mask, out, batch, channels, nbPositions, k))
        {
            return status;
        }
        // O(N * k) scratch, as on the GPU.
        int64_t const n = nbPositions;
        std::vector<float> values(static_cast<size_t>(n * k));
        std::vector<int32_t> indices(static_cast<size_t>(n * k));
        for (int32_t b = 0; b < batch; ++b)
        {
            float const* x = features + static_cast<int64_t>(b) * channels * n;
            float const* m = mask + b * n;
            knnTopkOne(x, m, values.data(), indices.data(), channels, nbPositions, k);
            knnFuseOne(x, m, values.data(), indices.data(), out + static_cast<int64_t>(b) * channels * n, channels,
                nbPositions, k);
        }
        return 0;
    }
    catch (std::exception const& e)
    {
        return cAbiFail(std::string(harmony::contract::kKnnTopkFusionName) + ": " + e.what());
    }
}

extern "C" char const* harmonyCpuLastError(void)
{
    return harmony::cAbiLastError().c_str();
}
