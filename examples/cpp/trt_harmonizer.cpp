/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "trt_harmonizer.h"

#include "common/harmonyContract.h"
#include "manifest.h"

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>

namespace harmony
{

namespace
{

void checkCuda(cudaError_t status, char const* what)
{
    if (status != cudaSuccess)
    {
        throw Error(std::string("CUDA: ") + what + " failed: " + cudaGetErrorString(status));
    }
}

//! TensorRT's messages of severity warning and above, on stderr.
class Logger final : public nvinfer1::ILogger
{
public:
    void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            std::fprintf(stderr, "TensorRT: %s\n", message);
        }
    }
};

//! The linked TensorRT library's version as "major.minor.patch".
std::string linkedTensorRtVersion()
{
    int32_t const version = getInferLibVersion(); // major * 10000 + minor * 100 + patch
    return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "."
        + std::to_string(version % 100);
}

//! The manifest's requirements that this process can check before deserializing.
void verifyManifest(EngineManifest const& manifest, std::vector<char> const& engine, std::string const& pluginLibrary)
{
    if (manifest.runtime != "tensorrt")
    {
        throw Error("the engine was built for " + manifest.runtime
            + "; harmonize_trt runs TensorRT engines (build one with harmony build --runtime tensorrt)");
    }
    std::string const linked = linkedTensorRtVersion();
    if (manifest.runtimeVersion.rfind(linked + ".", 0) != 0 && manifest.runtimeVersion != linked)
    {
        throw Error("the engine was built with TensorRT " + manifest.runtimeVersion + ", this is TensorRT " + linked
            + "; rebuild it with harmony build");
    }
    int device = 0;
    cudaDeviceProp properties{};
    checkCuda(cudaGetDevice(&device), "cudaGetDevice");
    checkCuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
    std::string const capability = std::to_string(properties.major) + "." + std::to_string(properties.minor);
    auto const& targets = manifest.computeCapabilities;
    if (std::find(targets.begin(), targets.end(), capability) == targets.end())
    {
        throw Error("the engine runs on compute capability " + (targets.empty() ? std::string("?") : targets.front())
            + ", this GPU (" + properties.name + ") is " + capability + "; rebuild it on this GPU");
    }
    if (sha256Hex(engine) != manifest.engineSha256)
    {
        throw Error("the engine file is not the one its manifest describes (SHA-256 differs); rebuild it");
    }
    if (manifest.hasPlugins && !manifest.pluginsEmbedded)
    {
        if (pluginLibrary.empty())
        {
            throw Error("the engine needs the plugin library (built at " + manifest.pluginPath
                + "); pass it with --plugins");
        }
        if (sha256Hex(readFile(pluginLibrary)) != manifest.pluginSha256)
        {
            throw Error("the plugin library " + pluginLibrary
                + " is not the one the engine was built with (SHA-256 differs); rebuild the engine");
        }
    }
}

} // namespace

struct TrtHarmonizer::State
{
    Logger logger;
    std::unique_ptr<nvinfer1::IRuntime> runtime;
    std::unique_ptr<nvinfer1::ICudaEngine> engine;
    std::unique_ptr<nvinfer1::IExecutionContext> context;
    cudaStream_t stream{nullptr};
    bool cudaGraph{false};
    cudaGraphExec_t graph{nullptr};
    int32_t height{0}; //!< size the buffers (and the captured graph) are for
    int32_t width{0};
    void* buffers[3]{nullptr, nullptr, nullptr}; // image, mask, harmonized

    void releaseBuffers()
    {
        if (graph != nullptr)
        {
            cudaGraphExecDestroy(graph);
            graph = nullptr;
        }
        for (void*& buffer : buffers)
        {
            cudaFree(buffer);
            buffer = nullptr;
        }
        height = width = 0;
    }

    ~State()
    {
        releaseBuffers();
        if (stream != nullptr)
        {
            cudaStreamDestroy(stream);
        }
    }

    //! Shapes, buffers and addresses for H x W (reallocated only when the size changes).
    void bind(int32_t h, int32_t w)
    {
        if (h == height && w == width)
        {
            return;
        }
        releaseBuffers();
        char const* const names[3]{contract::kGraphInputs[0], contract::kGraphInputs[1], contract::kGraphOutput};
        for (char const* name : names)
        {
            if (engine->getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
            {
                throw Error(std::string("the engine's tensor '") + name + "' is not float32; build it from a graph "
                    + "with float32 inputs and outputs");
            }
        }
        nvinfer1::Dims4 const imageDims{1, 3, h, w};
        nvinfer1::Dims4 const maskDims{1, 1, h, w};
        nvinfer1::Dims const lowest = engine->getProfileShape(names[0], 0, nvinfer1::OptProfileSelector::kMIN);
        nvinfer1::Dims const highest = engine->getProfileShape(names[0], 0, nvinfer1::OptProfileSelector::kMAX);
        if (h < lowest.d[2] || w < lowest.d[3] || h > highest.d[2] || w > highest.d[3])
        {
            throw Error("the engine's profile covers " + std::to_string(lowest.d[2]) + "x" + std::to_string(lowest.d[3])
                + " to " + std::to_string(highest.d[2]) + "x" + std::to_string(highest.d[3]) + " (HxW), not "
                + std::to_string(h) + "x" + std::to_string(w) + "; rebuild it with harmony build --res");
        }
        if (!context->setInputShape(names[0], imageDims) || !context->setInputShape(names[1], maskDims))
        {
            throw Error("TensorRT refused the input shapes");
        }
        size_t const pixels = static_cast<size_t>(h) * static_cast<size_t>(w);
        size_t const sizes[3]{3 * pixels * sizeof(float), pixels * sizeof(float), 3 * pixels * sizeof(float)};
        for (int i = 0; i < 3; ++i)
        {
            checkCuda(cudaMalloc(&buffers[i], sizes[i]), "cudaMalloc");
            context->setTensorAddress(names[i], buffers[i]);
        }
        height = h;
        width = w;
    }

    //! One inference on the bound buffers: enqueue, or replay the graph captured on first use.
    void run()
    {
        if (cudaGraph && graph == nullptr)
        {
            // The first enqueue after a shape change may allocate; capture the second.
            if (!context->enqueueV3(stream))
            {
                throw Error("TensorRT enqueueV3 failed");
            }
            cudaGraph_t captured = nullptr;
            checkCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
            bool const enqueued = context->enqueueV3(stream);
            checkCuda(cudaStreamEndCapture(stream, &captured), "cudaStreamEndCapture");
            if (!enqueued)
            {
                cudaGraphDestroy(captured);
                throw Error("TensorRT enqueueV3 failed during CUDA-graph capture");
            }
            cudaError_t const status = cudaGraphInstantiate(&graph, captured, 0);
            cudaGraphDestroy(captured);
            checkCuda(status, "cudaGraphInstantiate");
        }
        if (graph != nullptr)
        {
            checkCuda(cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
        }
        else if (!context->enqueueV3(stream))
        {
            throw Error("TensorRT enqueueV3 failed");
        }
    }
};

TrtHarmonizer::TrtHarmonizer(std::string const& enginePath, std::string const& pluginLibrary, bool cudaGraph)
    : mState(std::make_unique<State>())
{
    std::vector<char> const engine = readFile(enginePath);
    EngineManifest const manifest = readManifest(enginePath);
    verifyManifest(manifest, engine, pluginLibrary);
    State& s = *mState;
    s.cudaGraph = cudaGraph;
    s.runtime.reset(nvinfer1::createInferRuntime(s.logger));
    if (!s.runtime)
    {
        throw Error("cannot create the TensorRT runtime");
    }
    if (manifest.hasPlugins && manifest.pluginsEmbedded)
    {
        s.runtime->setEngineHostCodeAllowed(true); // the plugin library is serialized in the engine
    }
    else if (manifest.hasPlugins && s.runtime->getPluginRegistry().loadLibrary(pluginLibrary.c_str()) == nullptr)
    {
        throw Error("TensorRT cannot load the plugin library " + pluginLibrary);
    }
    s.engine.reset(s.runtime->deserializeCudaEngine(engine.data(), engine.size()));
    if (!s.engine)
    {
        throw Error("TensorRT cannot deserialize " + enginePath + " (messages above)");
    }
    s.context.reset(s.engine->createExecutionContext());
    if (!s.context)
    {
        throw Error("cannot create an execution context for " + enginePath);
    }
    checkCuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

TrtHarmonizer::~TrtHarmonizer() = default;

Image TrtHarmonizer::harmonize(Image const& composite, Image const& mask)
{
    GraphInputs const inputs = graphInputs(composite, mask);
    std::lock_guard<std::mutex> lock(mMutex);
    State& s = *mState;
    s.bind(inputs.height, inputs.width);
    checkCuda(cudaMemcpyAsync(s.buffers[0], inputs.image.data(), inputs.image.size() * sizeof(float),
                  cudaMemcpyHostToDevice, s.stream),
        "cudaMemcpyAsync");
    checkCuda(cudaMemcpyAsync(s.buffers[1], inputs.mask.data(), inputs.mask.size() * sizeof(float),
                  cudaMemcpyHostToDevice, s.stream),
        "cudaMemcpyAsync");
    s.run();
    std::vector<float> output(inputs.image.size());
    checkCuda(cudaMemcpyAsync(output.data(), s.buffers[2], output.size() * sizeof(float), cudaMemcpyDeviceToHost,
                  s.stream),
        "cudaMemcpyAsync");
    checkCuda(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
    return imageFromOutput(output.data(), inputs.height, inputs.width, composite.bitDepth);
}

} // namespace harmony
