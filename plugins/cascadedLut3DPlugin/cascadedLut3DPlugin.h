/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CascadedLut3D (namespace "harmony", version "1"): AICT's two cascaded position-dependent
 * lookups blended with the mask. The spec is README.md in this folder.
 */
#ifndef HARMONY_CASCADED_LUT_3D_PLUGIN_H
#define HARMONY_CASCADED_LUT_3D_PLUGIN_H

#include "common/fusedOpPlugin.h"
#include "common/harmonyContract.h"

#include "NvInferRuntime.h"

#include <cstdint>

namespace harmony
{
namespace plugin
{

//! The op as FusedOpPlugin sees it.
struct CascadedLut3DTraits
{
    static constexpr char const* kName{contract::kCascadedLutName};
    static constexpr auto& kInputs = contract::kCascadedLutInputs;
    static constexpr int32_t kNbInputs{contract::kCascadedLutNbInputs};
    static constexpr int32_t kNbOutputs{contract::kCascadedLutNbOutputs};
    static constexpr char const* kInput0Shape{"[B,3,H,W]"};
};

class CascadedLut3DPlugin : public FusedOpPlugin<CascadedLut3DPlugin, CascadedLut3DTraits>
{
public:
    CascadedLut3DPlugin();
    CascadedLut3DPlugin(CascadedLut3DPlugin const& other);
    CascadedLut3DPlugin& operator=(CascadedLut3DPlugin const&) = delete;
    ~CascadedLut3DPlugin() override = default;

    // IPluginV3OneBuild (the rest is FusedOpPlugin's)
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime (the rest is FusedOpPlugin's)
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    // The op has no attributes: nothing to serialize.
    nvinfer1::PluginFieldCollection mFieldsToSerialize{};
};

//! The op has no attributes: FusedOpPluginCreator's empty field list stands.
class CascadedLut3DPluginCreator : public FusedOpPluginCreator<CascadedLut3DTraits>
{
public:
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace harmony

#endif // HARMONY_CASCADED_LUT_3D_PLUGIN_H
