/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "knnTopkFusionPlugin/knnTopkFusionPlugin.h"

#include "common/harmonyContract.h"
#include "common/harmonyHostDevice.h"
#include "common/pluginFields.h"
#include "common/pluginLogging.h"
#include "knnTopkFusionPlugin/knnTopkFusionKernel.h"

#include <cstring>
#include <memory>
#include <string>

namespace harmony
{
namespace plugin
{
namespace
{

using namespace nvinfer1;
namespace hc = harmony::contract;

char const* const kName = hc::kKnnTopkFusionName;

enum InputIndex : int32_t
{
    kFeatures = 0,
    kMask = 1,
};

//! Shapes of the two inputs and k <= h*w; unknown (-1) dimensions pass.
void checkShapes(Dims const& features, Dims const& mask, int32_t k)
{
    int64_t const anyDims[]{-1, -1, -1, -1};
    checkDims(kName, hc::kKnnTopkFusionInputs[kFeatures], features, 4, anyDims, "[B,C,h,w]");
    int64_t const maskDims[]{features.d[0], 1, features.d[2], features.d[3]};
    checkDims(kName, hc::kKnnTopkFusionInputs[kMask], mask, 4, maskDims, "[B,1,h,w] (B,h,w of the features)");
    if (features.d[2] >= 0 && features.d[3] >= 0)
    {
        int64_t const positions = features.d[2] * features.d[3];
        HARMONY_PLUGIN_CHECK(positions == 0 || k <= positions,
            std::string(kName) + ": k=" + std::to_string(k) + " exceeds the number of positions h*w="
                + std::to_string(positions) + "; export with a smaller k or feed larger features");
    }
}

} // namespace

KnnTopkFusionPlugin::KnnTopkFusionPlugin(int32_t k)
    : mK(k)
{
    checkRange(kName, hc::kKnnAttrK, k, hc::kKnnKMin, hc::kKnnKMax);
}

KnnTopkFusionPlugin::KnnTopkFusionPlugin(KnnTopkFusionPlugin const& other)
    : KnnTopkFusionPlugin(other.mK)
{
}

int32_t KnnTopkFusionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        checkCounts(nbInputs, nbOutputs);
        HARMONY_PLUGIN_CHECK(in != nullptr && out != nullptr, std::string(kName) + ": null tensor descriptions");
        checkShapes(in[kFeatures].desc.dims, in[kMask].desc.dims, mK);
        // The smallest profile shape must hold k positions too.
        checkShapes(in[kFeatures].min, in[kMask].min, mK);
        // B and C become grid dimensions (<= 65535): refuse them when building, not at enqueue.
        Dims const& max = in[kFeatures].max;
        HARMONY_PLUGIN_CHECK(max.nbDims != 4 || (max.d[0] <= kMaxGridDim && max.d[1] <= kMaxGridDim),
            std::string(kName) + ": B and C must be <= " + std::to_string(kMaxGridDim)
                + " (CUDA grid limit), the profile's maximum features shape is " + dimsToString(max));
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "configurePlugin")
    return -1;
}

size_t KnnTopkFusionPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /* outputs */, int32_t /* nbOutputs */) const noexcept
{
    try
    {
        HARMONY_PLUGIN_CHECK(inputs != nullptr && nbInputs == hc::kKnnTopkFusionNbInputs,
            std::string(kName) + ": getWorkspaceSize expects the 2 input descriptions");
        // Sized for the largest shape of the profile: O(B * N * k).
        Dims const& dims = inputs[kFeatures].max;
        HARMONY_PLUGIN_CHECK(dims.nbDims == 4 && dims.d[0] >= 0 && dims.d[2] >= 0 && dims.d[3] >= 0,
            std::string(kName) + ": features need a bounded [B,C,h,w] maximum shape, got " + dimsToString(dims));
        return knnTopkFusionWorkspaceSize(
            static_cast<int32_t>(dims.d[0]), static_cast<int32_t>(dims.d[2] * dims.d[3]), mK);
    }
    HARMONY_PLUGIN_CATCH(kName, "getWorkspaceSize")
    return 0;
}

int32_t KnnTopkFusionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        checkCounts(nbInputs, nbOutputs);
        HARMONY_PLUGIN_CHECK(in != nullptr && out != nullptr, std::string(kName) + ": null tensor descriptions");
        checkShapes(in[kFeatures].dims, in[kMask].dims, mK);
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "onShapeChange")
    return -1;
}

int32_t KnnTopkFusionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    try
    {
        HARMONY_PLUGIN_CHECK(inputDesc != nullptr && outputDesc != nullptr && inputs != nullptr && outputs != nullptr,
            std::string(kName) + ": null enqueue arguments");
        // Real dimensions of this call (shapes are dynamic).
        Dims const& features = inputDesc[kFeatures].dims;
        checkShapes(features, inputDesc[kMask].dims, mK);
        auto const batch = static_cast<int32_t>(features.d[0]);
        auto const channels = static_cast<int32_t>(features.d[1]);
        auto const positions = static_cast<int32_t>(features.d[2] * features.d[3]);
        if (batch == 0 || channels == 0 || positions == 0)
        {
            return 0; // empty output
        }
        HARMONY_PLUGIN_CHECK(workspace != nullptr, std::string(kName) + ": no workspace was provided");
        cudaError_t status = cudaErrorInvalidValue;
        switch (inputDesc[kFeatures].type)
        {
        case DataType::kFLOAT:
            status = launchKnnTopkFusion(static_cast<float const*>(inputs[kFeatures]),
                static_cast<float const*>(inputs[kMask]), static_cast<float*>(outputs[0]), workspace, batch, channels,
                positions, mK, stream);
            break;
        case DataType::kHALF:
            status = launchKnnTopkFusion(static_cast<__half const*>(inputs[kFeatures]),
                static_cast<__half const*>(inputs[kMask]), static_cast<__half*>(outputs[0]), workspace, batch, channels,
                positions, mK, stream);
            break;
        default: throw PluginError(std::string(kName) + ": enqueue supports FP32 and FP16 only");
        }
        HARMONY_PLUGIN_CHECK(
            status == cudaSuccess, std::string(kName) + ": kernel launch failed: " + cudaGetErrorString(status)
                                       + " (B=" + std::to_string(batch) + ", C=" + std::to_string(channels)
                                       + ", N=" + std::to_string(positions) + ", k=" + std::to_string(mK) + ")");
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "enqueue")
    return -1;
}

PluginFieldCollection const* KnnTopkFusionPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mFields.clear();
        mFields.emplace_back(hc::kKnnAttrK, &mK, PluginFieldType::kINT32, 1);
        mFieldsToSerialize.nbFields = static_cast<int32_t>(mFields.size());
        mFieldsToSerialize.fields = mFields.data();
        return &mFieldsToSerialize;
    }
    HARMONY_PLUGIN_CATCH(kName, "getFieldsToSerialize")
    return nullptr;
}

KnnTopkFusionPluginCreator::KnnTopkFusionPluginCreator()
{
    mFields.emplace_back(hc::kKnnAttrK, nullptr, PluginFieldType::kINT32, 1);
    mFieldNames.nbFields = static_cast<int32_t>(mFields.size());
    mFieldNames.fields = mFields.data();
}

IPluginV3* KnnTopkFusionPluginCreator::createPlugin(
    char const* /* name */, PluginFieldCollection const* fc, TensorRTPhase /* phase */) noexcept
{
    try
    {
        int32_t k = hc::kKnnKDefault;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            PluginField const& field = fc->fields[i];
            char const* name = field.name != nullptr ? field.name : "(null)";
            if (std::strcmp(name, hc::kKnnAttrK) == 0)
            {
                k = readInt32Field(field, kName);
                checkRange(kName, hc::kKnnAttrK, k, hc::kKnnKMin, hc::kKnnKMax);
            }
            else
            {
                HARMONY_PLUGIN_CHECK(isParserField(name), std::string(kName) + ": unknown attribute '" + name
                                                              + "'; the only attribute is '" + hc::kKnnAttrK
                                                              + "' (see plugins/knnTopkFusionPlugin/README.md)");
            }
        }
        return std::make_unique<KnnTopkFusionPlugin>(k).release();
    }
    HARMONY_PLUGIN_CATCH(kName, "createPlugin")
    return nullptr;
}

} // namespace plugin
} // namespace harmony
