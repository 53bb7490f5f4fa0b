/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The C ABI of harmonyCudaOps.h over the kernel launchers the TensorRT plugins use.
 */
#include "cuda/harmonyCudaOps.h"

#include "cascadedLut3DPlugin/cascadedLut3DKernel.h"
#include "common/cAbi.h"
#include "knnTopkFusionPlugin/knnTopkFusionKernel.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <string>

namespace
{

using harmony::cAbiFail;

constexpr uint64_t kWorkspaceAlignment{256};

int32_t cudaStatus(cudaError_t status, std::string const& what)
{
    if (status == cudaSuccess)
    {
        return 0;
    }
    return cAbiFail(
        what + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")", harmony::kStatusCudaError);
}

int32_t checkedLaunch(cudaError_t status, char const* op)
{
    return cudaStatus(status, std::string(op) + ": kernel launch failed");
}

std::string dataTypeError(int32_t dataType, char const* op)
{
    if (dataType == kHarmonyCudaFloat32 || dataType == kHarmonyCudaFloat16)
    {
        return {};
    }
    return std::string(op) + ": unknown data type code " + std::to_string(dataType) + " (0: FP32, 1: FP16)";
}

std::string gridError(int64_t batch, int64_t channels, char const* op)
{
    if (batch <= harmony::kMaxGridDim && channels <= harmony::kMaxGridDim)
    {
        return {};
    }
    return std::string(op) + ": batch and channels must be <= " + std::to_string(harmony::kMaxGridDim)
        + " (CUDA grid limit), got " + std::to_string(batch) + " and " + std::to_string(channels);
}

template <typename T>
cudaError_t launchLut(void const* image, void const* mask, void const* knots, void const* curve, void* out,
    int32_t batch, int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth, cudaStream_t stream)
{
    return harmony::launchCascadedLut3D<T>(static_cast<T const*>(image), static_cast<T const*>(mask),
        static_cast<T const*>(knots), static_cast<T const*>(curve), static_cast<T*>(out), batch, height, width,
        mapHeight, mapWidth, stream);
}

template <typename T>
cudaError_t launchKnn(void const* features, void const* mask, void* out, void* workspace, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, cudaStream_t stream)
{
    return harmony::launchKnnTopkFusion<T>(static_cast<T const*>(features), static_cast<T const*>(mask),
        static_cast<T*>(out), workspace, batch, channels, nbPositions, k, stream);
}

} // namespace

extern "C" int32_t harmonyCudaCascadedLut3D(int32_t dataType, void const* image, void const* mask, void const* knots,
    void const* curve, void* out, int32_t batch, int32_t height, int32_t width, int32_t mapHeight, int32_t mapWidth,
    void* stream)
{
    char const* const op = harmony::contract::kCascadedLutName;
    try
    {
        if (image == nullptr || mask == nullptr || knots == nullptr || curve == nullptr || out == nullptr)
        {
            return cAbiFail(std::string(op) + ": null tensor pointer");
        }
        std::string error = dataTypeError(dataType, op);
        error = error.empty() ? harmony::cascadedLutArgumentError(batch, height, width, mapHeight, mapWidth) : error;
        error = error.empty() ? gridError(batch, 1, op) : error;
        if (!error.empty())
        {
            return cAbiFail(std::move(error));
        }
        auto const launch = dataType == kHarmonyCudaFloat16 ? launchLut<__half> : launchLut<float>;
        return checkedLaunch(launch(image, mask, knots, curve, out, batch, height, width, mapHeight, mapWidth,
                                 static_cast<cudaStream_t>(stream)),
            op);
    }
    catch (std::exception const& e)
    {
        return cAbiFail(std::string(op) + ": " + e.what());
    }
}

extern "C" uint64_t harmonyCudaKnnTopkFusionWorkspaceSize(int32_t batch, int32_t nbPositions, int32_t k)
{
    if (batch <= 0 || nbPositions <= 0 || k <= 0)
    {
        return 0;
    }
    return harmony::knnTopkFusionWorkspaceSize(batch, nbPositions, k);
}

extern "C" int32_t harmonyCudaKnnTopkFusion(int32_t dataType, void const* features, void const* mask, void* out,
    void* workspace, uint64_t workspaceBytes, int32_t batch, int32_t channels, int32_t nbPositions, int32_t k,
    void* stream)
{
    char const* const op = harmony::contract::kKnnTopkFusionName;
    try
    {
        if (features == nullptr || mask == nullptr || out == nullptr || workspace == nullptr)
        {
            return cAbiFail(std::string(op) + ": null tensor or workspace pointer");
        }
        std::string error = dataTypeError(dataType, op);
        error = error.empty() ? harmony::knnArgumentError(batch, channels, nbPositions, k) : error;
        error = error.empty() ? gridError(batch, channels, op) : error;
        if (!error.empty())
        {
            return cAbiFail(std::move(error));
        }
        uint64_t const needed = harmony::knnTopkFusionWorkspaceSize(batch, nbPositions, k);
        if (workspaceBytes < needed || reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment != 0)
        {
            return cAbiFail(std::string(op) + ": the workspace must hold " + std::to_string(needed)
                + " bytes aligned to " + std::to_string(kWorkspaceAlignment) + ", got "
                + std::to_string(workspaceBytes) + " bytes at offset "
                + std::to_string(reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment));
        }
        auto const launch = dataType == kHarmonyCudaFloat16 ? launchKnn<__half> : launchKnn<float>;
        return checkedLaunch(
            launch(features, mask, out, workspace, batch, channels, nbPositions, k, static_cast<cudaStream_t>(stream)),
            op);
    }
    catch (std::exception const& e)
    {
        return cAbiFail(std::string(op) + ": " + e.what());
    }
}

extern "C" int32_t harmonyCudaProbe(void)
{
    cudaError_t status = harmony::probeCascadedLut3D();
    status = status == cudaSuccess ? harmony::probeKnnTopkFusion() : status;
    return cudaStatus(status, "the harmony CUDA kernels cannot run on this device");
}

extern "C" char const* harmonyCudaLastError(void)
{
    return harmony::cAbiLastError().c_str();
}
