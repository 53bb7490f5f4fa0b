/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * harmonize_ort: harmonize one PNG with ONNX Runtime and the custom-op library.
 *
 *   harmonize_ort --model hdnet.trt.fp32.onnx --custom-ops libharmony_ort_ops.so \
 *       --image composite.png --mask mask.png -o harmonized.png [--threads N] [--force]
 *
 * --custom-ops may be "" for a portable ORT-target graph (no custom nodes).
 */
#include "cli.h"
#include "ort_harmonizer.h"

#include <string>

int main(int argc, char** argv)
{
    return harmony::runHarmonize(argc, argv,
        "harmonize_ort --model MODEL.onnx --custom-ops LIB.so --image C.png --mask M.png -o OUT.png "
        "[--threads N] [--force]",
        {{"custom-ops", "libharmony_ort_ops.so"}, {"threads", "0"}}, [](harmony::Arguments const& arguments) {
            std::string const& threads = arguments.options.at("threads");
            if (threads.empty() || threads.find_first_not_of("0123456789") != std::string::npos)
            {
                throw harmony::Error("--threads must be a non-negative integer, got '" + threads + "'");
            }
            return std::make_unique<harmony::OrtHarmonizer>(
                arguments.model, arguments.options.at("custom-ops"), static_cast<int32_t>(std::stoi(threads)));
        });
}
