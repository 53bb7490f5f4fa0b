/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The IPluginV3 plumbing both fused ops share, written once: capabilities, clone, names, and the
 * build-time rules of an op whose single output has the type and shape of input 0 and whose
 * tensors are all linear and of one type. A plugin derives from FusedOpPlugin<Plugin, Traits>
 * (CRTP: clone() copies the most-derived class) and keeps only what is its own: shape checks,
 * configurePlugin, workspace, enqueue and serialization. Traits describes the op:
 *
 *   kName                  the op's name (from harmonyContract.h)
 *   kInputs                the contract's array of input names, spelled in messages
 *   kNbInputs, kNbOutputs  the tensor counts every entry point checks
 *   kInput0Shape           input 0's shape as messages spell it, e.g. "[B,3,H,W]"
 */
#ifndef HARMONY_FUSED_OP_PLUGIN_H
#define HARMONY_FUSED_OP_PLUGIN_H

#include "common/harmonyContract.h"
#include "common/pluginFields.h"
#include "common/pluginLogging.h"

#include "NvInferRuntime.h"

#include <cstdint>
#include <memory>
#include <string>

namespace harmony
{
namespace plugin
{

//! The op's name, version and namespace, for the two interfaces that report them: the plugin's
//! IPluginV3OneCore and the creator's IPluginCreatorV3One.
template <typename Interface, typename Traits>
class OpIdentity : public Interface
{
public:
    char const* getPluginName() const noexcept override
    {
        return Traits::kName;
    }

    char const* getPluginVersion() const noexcept override
    {
        return contract::kPluginVersion;
    }

    char const* getPluginNamespace() const noexcept override
    {
        return contract::kPluginNamespace;
    }
};

template <typename Derived, typename Traits>
class FusedOpPlugin : public nvinfer1::IPluginV3,
                      public OpIdentity<nvinfer1::IPluginV3OneCore, Traits>,
                      public nvinfer1::IPluginV3OneBuild,
                      public nvinfer1::IPluginV3OneRuntime
{
    static_assert(sizeof(Traits::kInputs) / sizeof(Traits::kInputs[0]) == Traits::kNbInputs,
        "Traits::kInputs must name every input");
    // Output 0 mirrors input 0; the count messages spell "1 output".
    static_assert(Traits::kNbOutputs == 1, "FusedOpPlugin serves single-output ops");

public:
    ~FusedOpPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override
    {
        // Each capability is its own base subobject: the casts adjust `this`, a reinterpretation would not.
        switch (type)
        {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        logError(Traits::kName, "getCapabilityInterface: unknown capability type");
        return nullptr;
    }

    nvinfer1::IPluginV3* clone() noexcept override
    {
        try
        {
            return std::make_unique<Derived>(static_cast<Derived const&>(*this)).release();
        }
        HARMONY_PLUGIN_CATCH(Traits::kName, "clone")
        return nullptr;
    }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override
    {
        return Traits::kNbOutputs;
    }

    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
        int32_t nbInputs) const noexcept override
    {
        try
        {
            checkCounts(nbInputs, nbOutputs);
            HARMONY_PLUGIN_CHECK(
                outputTypes != nullptr && inputTypes != nullptr, std::string(Traits::kName) + ": null types");
            // The output has input 0's type; the kernels run FP32 and FP16 only.
            HARMONY_PLUGIN_CHECK(isFloatOrHalf(inputTypes[0]),
                std::string(Traits::kName) + ": input '" + Traits::kInputs[0] + "' must be FP32 or FP16, got DataType "
                    + std::to_string(static_cast<int32_t>(inputTypes[0])));
            outputTypes[0] = inputTypes[0];
            return 0;
        }
        HARMONY_PLUGIN_CATCH(Traits::kName, "getOutputDataTypes")
        return -1;
    }

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::DimsExprs const* /* shapeInputs */, int32_t /* nbShapeInputs */, nvinfer1::DimsExprs* outputs,
        int32_t nbOutputs, nvinfer1::IExprBuilder& /* exprBuilder */) noexcept override
    {
        try
        {
            checkCounts(nbInputs, nbOutputs);
            HARMONY_PLUGIN_CHECK(inputs != nullptr && outputs != nullptr, std::string(Traits::kName) + ": null shapes");
            HARMONY_PLUGIN_CHECK(inputs[0].nbDims == 4, std::string(Traits::kName) + ": input '" + Traits::kInputs[0]
                                                            + "' must be " + Traits::kInput0Shape + ", got rank "
                                                            + std::to_string(inputs[0].nbDims));
            // The output has input 0's shape.
            outputs[0] = inputs[0];
            return 0;
        }
        HARMONY_PLUGIN_CATCH(Traits::kName, "getOutputShapes")
        return -1;
    }

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override
    {
        try
        {
            if (nbInputs != Traits::kNbInputs || nbOutputs != Traits::kNbOutputs)
            {
                return false;
            }
            return supportsSameTypeLinear(pos, inOut, nbInputs + nbOutputs);
        }
        HARMONY_PLUGIN_CATCH(Traits::kName, "supportsFormatCombination")
        return false;
    }

    // IPluginV3OneRuntime
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* /* context */) noexcept override
    {
        // No per-context resource: the new context gets a plain copy.
        return clone();
    }

protected:
    FusedOpPlugin() = default;

    //! Throw unless the tensor counts are the op's.
    static void checkCounts(int32_t nbInputs, int32_t nbOutputs)
    {
        HARMONY_PLUGIN_CHECK(nbInputs == Traits::kNbInputs && nbOutputs == Traits::kNbOutputs,
            std::string(Traits::kName) + ": expected " + std::to_string(Traits::kNbInputs) + " inputs (" + inputNames()
                + ") and 1 output, got " + std::to_string(nbInputs) + " inputs and " + std::to_string(nbOutputs)
                + " outputs");
    }

private:
    //! "image, mask, ..." for messages.
    static std::string inputNames()
    {
        std::string names;
        for (char const* name : Traits::kInputs)
        {
            names += (names.empty() ? "" : ", ") + std::string(name);
        }
        return names;
    }
};

//! The creator's side of the same plumbing; the derived creator keeps createPlugin and lists the
//! op's attributes in mFieldNames (none by default).
template <typename Traits>
class FusedOpPluginCreator : public OpIdentity<nvinfer1::IPluginCreatorV3One, Traits>
{
public:
    ~FusedOpPluginCreator() override = default;

    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mFieldNames;
    }

protected:
    FusedOpPluginCreator() = default;

    nvinfer1::PluginFieldCollection mFieldNames{};
};

} // namespace plugin
} // namespace harmony

#endif // HARMONY_FUSED_OP_PLUGIN_H
