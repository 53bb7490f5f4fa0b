/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The C ABI of harmonyCpuOps.h: checks the arguments, then runs the kernels of
 * harmonyCpuKernels.h on std::threads.
 */
#include "cpu/harmonyCpuOps.h"

#include "common/cAbi.h"
#include "common/harmonyContract.h"
#include "cpu/harmonyCpuKernels.h"

#include <exception>
#include <string>

namespace
{

using harmony::cAbiFail;

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
        cpu::cascadedLut3D(
            image, mask, knots, curve, out, batch, height, width, mapHeight, mapWidth, cpu::threadParallelFor());
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
        harmony::cpu::knnTopk(features, mask, values, indices, batch, channels, nbPositions, k, harmony::cpu::threadParallelFor());
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
        harmony::cpu::knnTopkFusion(features, mask, out, batch, channels, nbPositions, k, harmony::cpu::threadParallelFor());
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
