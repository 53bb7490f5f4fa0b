/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Helpers shared by both plugins: plugin-field parsing and the checks of tensor descriptions.
 * Header-only; every function throws PluginError with a message naming the plugin.
 */
#ifndef HARMONY_PLUGIN_FIELDS_H
#define HARMONY_PLUGIN_FIELDS_H

#include "common/harmonyContract.h"
#include "common/pluginLogging.h"

#include "NvInferRuntime.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace harmony
{
namespace plugin
{

//! Fields TensorRT's ONNX parser may forward besides the op's own attributes; they are ignored.
inline bool isParserField(char const* name)
{
    return std::strcmp(name, contract::kPluginVersionAttr) == 0
           || std::strcmp(name, contract::kPluginNamespaceAttr) == 0;
}

//! The value of a scalar integer field (INT32, or INT64 that fits in int32: ONNX stores ints as
//! int64); throws when its type or length is wrong.
inline int32_t readInt32Field(nvinfer1::PluginField const& field, char const* pluginName)
{
    bool const isInt32 = field.type == nvinfer1::PluginFieldType::kINT32;
    bool const isInt64 = field.type == nvinfer1::PluginFieldType::kINT64;
    HARMONY_PLUGIN_CHECK((isInt32 || isInt64) && field.length == 1 && field.data != nullptr,
        std::string(pluginName) + ": attribute '" + field.name
            + "' must be one integer (PluginFieldType::kINT32 or kINT64, length 1), got type "
            + std::to_string(static_cast<int32_t>(field.type)) + ", length " + std::to_string(field.length));
    if (isInt32)
    {
        int32_t value{};
        std::memcpy(&value, field.data, sizeof(value));
        return value;
    }
    int64_t value{};
    std::memcpy(&value, field.data, sizeof(value));
    HARMONY_PLUGIN_CHECK(value >= INT32_MIN && value <= INT32_MAX, std::string(pluginName) + ": attribute '"
                                                                       + field.name + "' = " + std::to_string(value)
                                                                       + " does not fit in int32");
    return static_cast<int32_t>(value);
}

//! Throw unless min <= value <= max.
inline void checkRange(char const* pluginName, char const* attribute, int32_t value, int32_t min, int32_t max)
{
    HARMONY_PLUGIN_CHECK(value >= min && value <= max, std::string(pluginName) + ": attribute '" + attribute
                                                           + "' must be in [" + std::to_string(min) + ", "
                                                           + std::to_string(max) + "], got " + std::to_string(value));
}

//! "[d0,d1,...]" for messages.
inline std::string dimsToString(nvinfer1::Dims const& dims)
{
    std::string text = "[";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        text += (i > 0 ? "," : "") + std::to_string(dims.d[i]);
    }
    return text + "]";
}

//! True for the I/O types the kernels implement.
inline bool isFloatOrHalf(nvinfer1::DataType type)
{
    return type == nvinfer1::DataType::kFLOAT || type == nvinfer1::DataType::kHALF;
}

//! The format rule of both plugins: linear, input 0 FP32 or FP16, every other tensor the same type.
inline bool supportsSameTypeLinear(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInOut)
{
    if (inOut == nullptr || pos < 0 || pos >= nbInOut)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    return pos == 0 ? isFloatOrHalf(desc.type) : desc.type == inOut[0].desc.type;
}

//! Throw unless `dims` has `nbDims` entries and every known (>= 0) entry equals `expected`
//! where expected is >= 0 (-1 in `expected` matches anything).
inline void checkDims(char const* pluginName, char const* tensor, nvinfer1::Dims const& dims, int32_t nbDims,
    int64_t const* expected, char const* spelled)
{
    bool ok = dims.nbDims == nbDims;
    for (int32_t i = 0; ok && i < nbDims; ++i)
    {
        ok = expected[i] < 0 || dims.d[i] < 0 || dims.d[i] == expected[i];
    }
    HARMONY_PLUGIN_CHECK(
        ok, std::string(pluginName) + ": input '" + tensor + "' must be " + spelled + ", got " + dimsToString(dims));
}

} // namespace plugin
} // namespace harmony

#endif // HARMONY_PLUGIN_FIELDS_H
