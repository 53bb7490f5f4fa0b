/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The single registration point of libharmony_plugins.so: the two entry points TensorRT 10/11
 * looks up in a plugin library (IPluginRegistry::loadLibrary, trtexec --dynamicPlugins,
 * trt.get_plugin_registry().load_library). The library never links libnvinfer.
 */
#include "cascadedLut3DPlugin/cascadedLut3DPlugin.h"
#include "common/pluginLogging.h"
#include "knnTopkFusionPlugin/knnTopkFusionPlugin.h"

#include "NvInferRuntime.h"

#include <cstdint>

#define HARMONY_EXPORT __attribute__((visibility("default")))

extern "C" HARMONY_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    harmony::plugin::setLoggerFinder(finder);
}

extern "C" HARMONY_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    nbCreators = 0;
    try
    {
        static harmony::plugin::CascadedLut3DPluginCreator sCascadedLut3DCreator;
        static harmony::plugin::KnnTopkFusionPluginCreator sKnnTopkFusionCreator;
        static nvinfer1::IPluginCreatorInterface* const sCreators[]{&sCascadedLut3DCreator, &sKnnTopkFusionCreator};
        nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
        return sCreators;
    }
    HARMONY_PLUGIN_CATCH("getCreators")
    return nullptr;
}
