/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cascadedLut3DPlugin/cascadedLut3DPlugin.h"

#include "cascadedLut3DPlugin/cascadedLut3DKernel.h"
#include "common/harmonyContract.h"
#include "common/harmonyHostDevice.h"
#include "common/pluginFields.h"
#include "common/pluginLogging.h"

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

char const* const kName = hc::kCascadedLutName;

enum InputIndex : int32_t
{
    kImage = 0,
    kMask = 1,
    kKnots = 2,
    kCurve = 3,
};

//! Shapes of the four inputs; unknown (-1) dimensions pass, so this serves build and run time.
void checkShapes(Dims const& image, Dims const& mask, Dims const& knots, Dims const& curve)
{
    int64_t const b = image.nbDims == 4 ? image.d[0] : -1;
    int64_t const h = image.nbDims == 4 ? image.d[2] : -1;
    int64_t const w = image.nbDims == 4 ? image.d[3] : -1;
    int64_t const imageDims[]{-1, hc::kLutChannels, -1, -1};
    checkDims(kName, hc::kCascadedLutInputs[kImage], image, 4, imageDims, "[B,3,H,W]");
    int64_t const maskDims[]{b, 1, h, w};
    checkDims(kName, hc::kCascadedLutInputs[kMask], mask, 4, maskDims, "[B,1,H,W] (B,H,W of the image)");
    int64_t const knotDims[]{b, hc::kLutChannels, hc::kLutKnots, -1, -1};
    checkDims(kName, hc::kCascadedLutInputs[kKnots], knots, 5, knotDims, "[B,3,9,h,w]");
    int64_t const mh = knots.nbDims == 5 ? knots.d[3] : -1;
    int64_t const mw = knots.nbDims == 5 ? knots.d[4] : -1;
    int64_t const curveDims[]{b, hc::kLutChannels, hc::kLutCurvePoints, mh, mw};
    checkDims(kName, hc::kCascadedLutInputs[kCurve], curve, 5, curveDims, "[B,3,8,h,w] (h,w of the knots)");
}

} // namespace

CascadedLut3DPlugin::CascadedLut3DPlugin() = default;

CascadedLut3DPlugin::CascadedLut3DPlugin(CascadedLut3DPlugin const& /* other */)
    : CascadedLut3DPlugin()
{
}

int32_t CascadedLut3DPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        checkCounts(nbInputs, nbOutputs);
        HARMONY_PLUGIN_CHECK(in != nullptr && out != nullptr, std::string(kName) + ": null tensor descriptions");
        checkShapes(in[kImage].desc.dims, in[kMask].desc.dims, in[kKnots].desc.dims, in[kCurve].desc.dims);
        // B becomes grid z (<= 65535): refuse it when building, not at enqueue.
        Dims const& max = in[kImage].max;
        HARMONY_PLUGIN_CHECK(max.nbDims != 4 || max.d[0] <= kMaxGridDim,
            std::string(kName) + ": B must be <= " + std::to_string(kMaxGridDim)
                + " (CUDA grid limit), the profile's maximum image shape is " + dimsToString(max));
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "configurePlugin")
    return -1;
}

size_t CascadedLut3DPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /* inputs */, int32_t /* nbInputs */,
    DynamicPluginTensorDesc const* /* outputs */, int32_t /* nbOutputs */) const noexcept
{
    // One pass per output pixel, no intermediate buffer.
    return 0;
}

int32_t CascadedLut3DPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        checkCounts(nbInputs, nbOutputs);
        HARMONY_PLUGIN_CHECK(in != nullptr && out != nullptr, std::string(kName) + ": null tensor descriptions");
        checkShapes(in[kImage].dims, in[kMask].dims, in[kKnots].dims, in[kCurve].dims);
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "onShapeChange")
    return -1;
}

int32_t CascadedLut3DPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /* workspace */, cudaStream_t stream) noexcept
{
    try
    {
        HARMONY_PLUGIN_CHECK(inputDesc != nullptr && outputDesc != nullptr && inputs != nullptr && outputs != nullptr,
            std::string(kName) + ": null enqueue arguments");
        // Real dimensions of this call (shapes are dynamic).
        Dims const& image = inputDesc[kImage].dims;
        Dims const& knots = inputDesc[kKnots].dims;
        checkShapes(image, inputDesc[kMask].dims, knots, inputDesc[kCurve].dims);
        auto const batch = static_cast<int32_t>(image.d[0]);
        auto const height = static_cast<int32_t>(image.d[2]);
        auto const width = static_cast<int32_t>(image.d[3]);
        auto const mapHeight = static_cast<int32_t>(knots.d[3]);
        auto const mapWidth = static_cast<int32_t>(knots.d[4]);
        if (batch == 0 || height == 0 || width == 0)
        {
            return 0; // empty output
        }
        cudaError_t status = cudaErrorInvalidValue;
        switch (inputDesc[kImage].type)
        {
        case DataType::kFLOAT:
            status = launchCascadedLut3D(static_cast<float const*>(inputs[kImage]),
                static_cast<float const*>(inputs[kMask]), static_cast<float const*>(inputs[kKnots]),
                static_cast<float const*>(inputs[kCurve]), static_cast<float*>(outputs[0]), batch, height, width,
                mapHeight, mapWidth, stream);
            break;
        case DataType::kHALF:
            status = launchCascadedLut3D(static_cast<__half const*>(inputs[kImage]),
                static_cast<__half const*>(inputs[kMask]), static_cast<__half const*>(inputs[kKnots]),
                static_cast<__half const*>(inputs[kCurve]), static_cast<__half*>(outputs[0]), batch, height, width,
                mapHeight, mapWidth, stream);
            break;
        default: throw PluginError(std::string(kName) + ": enqueue supports FP32 and FP16 only");
        }
        HARMONY_PLUGIN_CHECK(status == cudaSuccess,
            std::string(kName) + ": kernel launch failed: " + cudaGetErrorString(status)
                + " (B=" + std::to_string(batch) + ", H=" + std::to_string(height) + ", W=" + std::to_string(width)
                + ", map " + std::to_string(mapHeight) + "x" + std::to_string(mapWidth) + ")");
        return 0;
    }
    HARMONY_PLUGIN_CATCH(kName, "enqueue")
    return -1;
}

PluginFieldCollection const* CascadedLut3DPlugin::getFieldsToSerialize() noexcept
{
    mFieldsToSerialize.nbFields = 0;
    mFieldsToSerialize.fields = nullptr;
    return &mFieldsToSerialize;
}

IPluginV3* CascadedLut3DPluginCreator::createPlugin(
    char const* /* name */, PluginFieldCollection const* fc, TensorRTPhase /* phase */) noexcept
{
    try
    {
        // The op has no attributes: reject anything but the parser's bookkeeping fields.
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            char const* field = fc->fields[i].name != nullptr ? fc->fields[i].name : "(null)";
            HARMONY_PLUGIN_CHECK(
                isParserField(field), std::string(kName) + ": unknown attribute '" + field
                                          + "'; the op has no attributes (see plugins/cascadedLut3DPlugin/README.md)");
        }
        return std::make_unique<CascadedLut3DPlugin>().release();
    }
    HARMONY_PLUGIN_CATCH(kName, "createPlugin")
    return nullptr;
}

} // namespace plugin
} // namespace harmony
