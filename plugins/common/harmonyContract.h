/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The op contract as seen by the plugin library. Every constant mirrors src/harmony/contract.py,
 * the one source of truth; tests/plugins/test_plugin_contract.py fails when the two disagree.
 * No TensorRT or CUDA header is needed: the CPU library includes this file too.
 */
#ifndef HARMONY_CONTRACT_H
#define HARMONY_CONTRACT_H

#include <cstdint>

namespace harmony
{
namespace contract
{

// ONNX domain of the custom nodes and its opset version (ONNX Runtime custom-op domain).
constexpr char const* kOnnxDomain{"harmony"};
constexpr int32_t kOnnxDomainVersion{1};
constexpr char const* kPluginNamespace{"harmony"};
constexpr char const* kPluginVersion{"1"};
// String fields TensorRT's ONNX parser forwards from every custom node besides the op's own.
constexpr char const* kPluginVersionAttr{"plugin_version"};
constexpr char const* kPluginNamespaceAttr{"plugin_namespace"};

// Inputs and output of every exported harmonization graph (image [B,3,H,W], mask [B,1,H,W]).
constexpr char const* kGraphInputs[]{"image", "mask"};
constexpr char const* kGraphOutput{"harmonized"};

// The JSON manifest next to every engine (MODEL.engine + suffix) and its schema.
constexpr char const* kEngineManifestSchema{"harmony-engine-manifest/2"};
constexpr char const* kEngineManifestSuffix{".json"};

// CascadedLut3D: image [B,3,H,W], mask [B,1,H,W], knots [B,3,9,h,w], curve [B,3,8,h,w].
constexpr char const* kCascadedLutName{"CascadedLut3D"};
constexpr char const* kCascadedLutInputs[]{"image", "mask", "knots", "curve"};
constexpr char const* kCascadedLutOutputs[]{"harmonized"};
constexpr int32_t kCascadedLutNbInputs{4};
constexpr int32_t kCascadedLutNbOutputs{1};

// KnnTopkFusion: features [B,C,h,w], mask [B,1,h,w]; int attribute k.
constexpr char const* kKnnTopkFusionName{"KnnTopkFusion"};
constexpr char const* kKnnTopkFusionInputs[]{"features", "mask"};
constexpr char const* kKnnTopkFusionOutputs[]{"fused"};
constexpr int32_t kKnnTopkFusionNbInputs{2};
constexpr int32_t kKnnTopkFusionNbOutputs{1};
constexpr char const* kKnnAttrK{"k"};
constexpr int32_t kKnnKDefault{1};
constexpr int32_t kKnnKMin{1};
constexpr int32_t kKnnKMax{32};

// Fixed sizes of the AICT LUT maps.
constexpr int32_t kLutKnots{9};
constexpr int32_t kLutCurvePoints{8};
constexpr int32_t kLutChannels{3};

} // namespace contract
} // namespace harmony

#endif // HARMONY_CONTRACT_H
