/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * A Harmonizer on ONNX Runtime (C API): a TensorRT-target graph (custom nodes and all) with the
 * custom-op library libharmony_ort_ops.so, or a portable ORT-target graph without it.
 */
#ifndef HARMONY_EXAMPLES_ORT_HARMONIZER_H
#define HARMONY_EXAMPLES_ORT_HARMONIZER_H

#include "harmonizer.h"

#include <memory>
#include <string>

struct OrtApi;
struct OrtEnv;
struct OrtSession;
struct OrtMemoryInfo;

namespace harmony
{

class OrtHarmonizer final : public Harmonizer
{
public:
    //! Create the session once. `customOpLibrary` may be empty for a graph without custom nodes;
    //! `threads` 0 lets ONNX Runtime choose. Throws Error with ONNX Runtime's message (missing
    //! library, a custom node of another plugin version, a graph harmony-export did not write).
    OrtHarmonizer(std::string const& modelPath, std::string const& customOpLibrary, int32_t threads = 0);
    ~OrtHarmonizer() override;

    //! Thread-safe: ONNX Runtime runs one session from several threads.
    Image harmonize(Image const& composite, Image const& mask) override;

private:
    void release() noexcept;

    OrtApi const* mApi{nullptr};
    OrtEnv* mEnv{nullptr};
    OrtSession* mSession{nullptr};
    OrtMemoryInfo* mMemory{nullptr};
};

} // namespace harmony

#endif // HARMONY_EXAMPLES_ORT_HARMONIZER_H
