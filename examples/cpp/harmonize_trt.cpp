/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * harmonize_trt: harmonize one PNG with a TensorRT engine built by `harmony build`.
 *
 *   harmonize_trt --model hdnet.engine --plugins libharmony_plugins.so \
 *       --image composite.png --mask mask.png -o harmonized.png [--cuda-graph 1] [--force]
 *
 * Needs TensorRT and an NVIDIA GPU; the engine's manifest (hdnet.engine.json) is checked first.
 */
#include "cli.h"
#include "trt_harmonizer.h"

int main(int argc, char** argv)
{
    return harmony::runHarmonize(argc, argv,
        "harmonize_trt --model MODEL.engine --plugins LIB.so --image C.png --mask M.png -o OUT.png "
        "[--cuda-graph 0|1] [--force]",
        {{"plugins", ""}, {"cuda-graph", "0"}}, [](harmony::Arguments const& arguments) {
            std::string const& graph = arguments.options.at("cuda-graph");
            if (graph != "0" && graph != "1")
            {
                throw harmony::Error("--cuda-graph must be 0 or 1, got '" + graph + "'");
            }
            return std::make_unique<harmony::TrtHarmonizer>(arguments.model, arguments.options.at("plugins"), graph == "1");
        });
}
