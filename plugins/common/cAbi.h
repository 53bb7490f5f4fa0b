/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * What the two C ABIs (libharmony_cpu_ops.so, libharmony_cuda_ops.so) share: the per-thread
 * message of the last failed call and the checks of the op dimensions. Each library gets its
 * own copy of the message slot (hidden visibility); no CUDA or TensorRT header is needed.
 */
#ifndef HARMONY_C_ABI_H
#define HARMONY_C_ABI_H

#include "common/harmonyContract.h"
#include "common/harmonyHostDevice.h"

#include <cstdint>
#include <string>

namespace harmony
{

//! Status codes of the C ABIs (0 is success).
constexpr int32_t kStatusInvalidArgument{1};
constexpr int32_t kStatusCudaError{2};

//! The calling thread's message of the last failed call ("" if none).
inline std::string& cAbiLastError()
{
    thread_local std::string message;
    return message;
}

//! Record `message` for cAbiLastError() and return `status`.
inline int32_t cAbiFail(std::string message, int32_t status = kStatusInvalidArgument)
{
    cAbiLastError() = std::move(message);
    return status;
}

//! "" when the CascadedLut3D dimensions are valid, else what is wrong.
inline std::string cascadedLutArgumentError(
    int64_t batch, int64_t height, int64_t width, int64_t mapHeight, int64_t mapWidth)
{
    if (batch <= 0 || height <= 0 || width <= 0 || mapHeight <= 0 || mapWidth <= 0)
    {
        return std::string(contract::kCascadedLutName) + ": every dimension must be > 0";
    }
    return {};
}

//! "" when the KnnTopkFusion dimensions and k are valid, else what is wrong.
inline std::string knnArgumentError(int64_t batch, int64_t channels, int64_t nbPositions, int64_t k)
{
    using namespace contract;
    if (batch <= 0 || channels <= 0 || nbPositions <= 0)
    {
        return std::string(contract::kKnnTopkFusionName) + ": batch, channels and positions must be > 0, got "
            + std::to_string(batch) + ", " + std::to_string(channels) + ", " + std::to_string(nbPositions);
    }
    if (k < kKnnKMin || k > kKnnKMax)
    {
        return std::string(contract::kKnnTopkFusionName) + ": attribute '" + kKnnAttrK + "' must be in ["
            + std::to_string(kKnnKMin) + ", " + std::to_string(kKnnKMax) + "], got " + std::to_string(k);
    }
    if (k > nbPositions)
    {
        return std::string(contract::kKnnTopkFusionName) + ": k=" + std::to_string(k)
            + " exceeds the number of positions " + std::to_string(nbPositions);
    }
    return {};
}

} // namespace harmony

#endif // HARMONY_C_ABI_H
