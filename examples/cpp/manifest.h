/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The engine manifest (MODEL.engine.json, written by `harmony build`) as harmonize_trt checks
 * it before deserializing: schema, runtime and version, the GPU's compute capability, the
 * engine's SHA-256 and the plugin library's. Holds a small JSON reader for that file only.
 */
#ifndef HARMONY_EXAMPLES_MANIFEST_H
#define HARMONY_EXAMPLES_MANIFEST_H

#include <string>
#include <vector>

namespace harmony
{

//! What harmonize_trt needs of a manifest.
struct EngineManifest
{
    std::string runtime;        //!< "tensorrt" or "tensorrt-rtx"
    std::string runtimeVersion; //!< e.g. "11.1.0.2"
    std::vector<std::string> computeCapabilities;
    std::string engineSha256;
    bool hasPlugins{false};
    bool pluginsEmbedded{false};
    std::string pluginSha256;
    std::string pluginPath; //!< where the library was at build time
};

//! Read `enginePath` + ".json". Throws Error when it is missing, malformed or of another schema.
EngineManifest readManifest(std::string const& enginePath);

//! Lowercase hex SHA-256 of `bytes`.
std::string sha256Hex(std::vector<char> const& bytes);

//! The whole file; throws Error when it cannot be read.
std::vector<char> readFile(std::string const& path);

} // namespace harmony

#endif // HARMONY_EXAMPLES_MANIFEST_H
