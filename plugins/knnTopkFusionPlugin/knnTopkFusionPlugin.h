/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * KnnTopkFusion (namespace "harmony", version "1"): HDNet's LocalDynamics fusion, the top-k
 * nearest support features of every query position, softmax-weighted as in the official code,
 * without the N x N similarity matrix. The spec is README.md in this folder.
 */
#ifndef HARMONY_KNN_TOPK_FUSION_PLUGIN_H
#define HARMONY_KNN_TOPK_FUSION_PLUGIN_H

#include "common/fusedOpPlugin.h"
#include "common/harmonyContract.h"

#include "NvInferRuntime.h"

#include <cstdint>
#include <vector>

namespace harmony
{
namespace plugin
{

//! The op as FusedOpPlugin sees it.
struct KnnTopkFusionTraits
{
    static constexpr char const* kName{contract::kKnnTopkFusionName};
    static constexpr auto& kInputs = contract::kKnnTopkFusionInputs;
    static constexpr int32_t kNbInputs{contract::kKnnTopkFusionNbInputs};
    static constexpr int32_t kNbOutputs{contract::kKnnTopkFusionNbOutputs};
    static constexpr char const* kInput0Shape{"[B,C,h,w]"};
};

class KnnTopkFusionPlugin : public FusedOpPlugin<KnnTopkFusionPlugin, KnnTopkFusionTraits>
{
public:
    //! k: neighbours per query, validated by the creator (1..32).
    explicit KnnTopkFusionPlugin(int32_t k);
    KnnTopkFusionPlugin(KnnTopkFusionPlugin const& other);
    KnnTopkFusionPlugin& operator=(KnnTopkFusionPlugin const&) = delete;
    ~KnnTopkFusionPlugin() override = default;

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

    int32_t getK() const noexcept
    {
        return mK;
    }

private:
    int32_t mK;
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldsToSerialize{};
};

class KnnTopkFusionPluginCreator : public FusedOpPluginCreator<KnnTopkFusionTraits>
{
public:
    //! Lists the attribute k in mFieldNames.
    KnnTopkFusionPluginCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFields;
};

} // namespace plugin
} // namespace harmony

#endif // HARMONY_KNN_TOPK_FUSION_PLUGIN_H
