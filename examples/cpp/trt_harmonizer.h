/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * A Harmonizer on TensorRT (C++ API): an engine built by `harmony build` (runtime "tensorrt"),
 * checked against its manifest before it is deserialized, one execution context, one CUDA
 * stream, device buffers reused across calls of the same size, and optional CUDA-graph replay.
 * Runs only where TensorRT and an NVIDIA GPU exist. TensorRT-RTX engines need the TensorRT-RTX
 * runtime library instead and are refused with a message.
 */
#ifndef HARMONY_EXAMPLES_TRT_HARMONIZER_H
#define HARMONY_EXAMPLES_TRT_HARMONIZER_H

#include "harmonizer.h"

#include <memory>
#include <mutex>
#include <string>

namespace harmony
{

class TrtHarmonizer final : public Harmonizer
{
public:
    //! Verify the manifest, load `pluginLibrary` (unless the engine embeds it; may be empty for
    //! an engine without custom nodes), deserialize the engine and create the context.
    //! Throws Error naming what does not match (runtime version, GPU, engine or plugin SHA-256).
    TrtHarmonizer(std::string const& enginePath, std::string const& pluginLibrary, bool cudaGraph);
    ~TrtHarmonizer() override;

    //! Thread-safe: calls are serialized on the one execution context.
    Image harmonize(Image const& composite, Image const& mask) override;

private:
    struct State;
    std::unique_ptr<State> mState;
    std::mutex mMutex;
};

} // namespace harmony

#endif // HARMONY_EXAMPLES_TRT_HARMONIZER_H
