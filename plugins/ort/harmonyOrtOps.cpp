/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * libharmony_ort_ops.so: the custom nodes of TensorRT-target graphs (domain "harmony",
 * CascadedLut3D and KnnTopkFusion) as ONNX Runtime custom ops: on the CPU execution provider the
 * plugins' math (cpu/harmonyCpuKernels.h) on ONNX Runtime's intra-op thread pool; in a build
 * with CUDA (HARMONY_ORT_CUDA) also on the CUDA execution provider, the plugin kernels
 * (cuda/harmonyCudaOps.h) on the session's compute stream, the KNN's O(N * k) workspace from the
 * session's CUDA allocator.
 *
 * Loaded with SessionOptions.register_custom_ops_library (Python) or RegisterCustomOpsLibrary_V2
 * (C/C++), which call RegisterCustomOps below. Written against ONNX Runtime's C API only, whose
 * ABI is versioned: the library asks the runtime for the API version of the headers it was built
 * with (ORT_API_VERSION), which every runtime at least that new provides; an older runtime gets
 * a status saying so. Kernels are created when a session is created, so a node of another plugin
 * version or a bad attribute fails session creation with a message naming the node.
 */
#include "common/cAbi.h"
#include "common/harmonyContract.h"
#include "cpu/harmonyCpuKernels.h"

#include <onnxruntime_c_api.h>
#ifdef HARMONY_ORT_CUDA
#include "cuda/harmonyCudaOps.h"

#include <cuda_runtime_api.h>
#endif

#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{

using namespace harmony;
namespace hc = harmony::contract;

OrtApi const* gApi{nullptr};

//! A failure to report to ONNX Runtime as a status (the message says what and where).
struct OpError : std::runtime_error
{
    OpError(OrtErrorCode code, std::string const& message)
        : std::runtime_error(message)
        , code(code)
    {
    }
    OrtErrorCode code;
};

//! Throw the message of a failed ONNX Runtime call.
void check(OrtStatus* status)
{
    if (status != nullptr)
    {
        std::string message = gApi->GetErrorMessage(status);
        OrtErrorCode const code = gApi->GetErrorCode(status);
        gApi->ReleaseStatus(status);
        throw OpError(code, message);
    }
}

//! Run `body`, turning an exception into the status ONNX Runtime expects.
template <typename Body>
OrtStatus* guarded(Body&& body) noexcept
{
    try
    {
        body();
        return nullptr;
    }
    catch (OpError const& e)
    {
        return gApi->CreateStatus(e.code, e.what());
    }
    catch (std::exception const& e)
    {
        return gApi->CreateStatus(ORT_FAIL, e.what());
    }
}

std::string nodeName(OrtKernelInfo const* info)
{
    size_t size = 0;
    check(gApi->KernelInfo_GetNodeName(info, nullptr, &size));
    std::string name(size, '\0');
    check(gApi->KernelInfo_GetNodeName(info, name.data(), &size));
    name.resize(size > 0 ? size - 1 : 0);
    return name;
}

//! A string attribute, or `fallback` where the node has none.
std::string stringAttribute(OrtKernelInfo const* info, char const* name, std::string fallback)
{
    size_t size = 0;
    OrtStatus* status = gApi->KernelInfoGetAttribute_string(info, name, nullptr, &size);
    if (status != nullptr)
    {
        gApi->ReleaseStatus(status);
        return fallback;
    }
    std::string value(size, '\0');
    check(gApi->KernelInfoGetAttribute_string(info, name, value.data(), &size));
    value.resize(size > 0 ? size - 1 : 0);
    return value;
}

//! What every kernel knows: the node (for messages) and the op it runs.
struct KernelBase
{
    std::string op;
    std::string node;

    std::string where() const
    {
        return std::string(hc::kOnnxDomain) + "::" + op + " node '" + node + "'";
    }
};

//! Check the plugin version and namespace a node asks for against this library's.
KernelBase kernelBase(OrtKernelInfo const* info, char const* op)
{
    KernelBase base{op, nodeName(info)};
    std::string const version = stringAttribute(info, hc::kPluginVersionAttr, hc::kPluginVersion);
    if (version != hc::kPluginVersion)
    {
        throw OpError(ORT_NOT_IMPLEMENTED,
            base.where() + " needs plugin version '" + version + "', but libharmony_ort_ops.so implements '"
                + hc::kPluginVersion + "': use the harmony-deploy release that exported the graph, or re-export it");
    }
    std::string const space = stringAttribute(info, hc::kPluginNamespaceAttr, hc::kPluginNamespace);
    if (space != hc::kPluginNamespace)
    {
        throw OpError(ORT_INVALID_ARGUMENT,
            base.where() + " asks for plugin namespace '" + space + "'; libharmony_ort_ops.so implements '"
                + hc::kPluginNamespace + "'");
    }
    return base;
}

//! Shape of an input tensor, checked to be float32 of rank `rank`.
std::vector<int64_t> inputShape(KernelBase const& kernel, OrtValue const* value, char const* name, size_t rank)
{
    OrtTensorTypeAndShapeInfo* info = nullptr;
    check(gApi->GetTensorTypeAndShape(value, &info));
    std::unique_ptr<OrtTensorTypeAndShapeInfo, void (*)(OrtTensorTypeAndShapeInfo*)> owned(
        info, gApi->ReleaseTensorTypeAndShapeInfo);
    ONNXTensorElementDataType type{};
    size_t count = 0;
    check(gApi->GetTensorElementType(info, &type));
    check(gApi->GetDimensionsCount(info, &count));
    std::vector<int64_t> dims(count);
    check(gApi->GetDimensions(info, dims.data(), count));
    if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || count != rank)
    {
        throw OpError(ORT_INVALID_ARGUMENT,
            kernel.where() + ": input '" + name + "' must be a float32 tensor of rank " + std::to_string(rank));
    }
    return dims;
}

std::string shapeText(std::vector<int64_t> const& dims)
{
    std::string text = "[";
    for (size_t i = 0; i < dims.size(); ++i)
    {
        text += (i > 0 ? "," : "") + std::to_string(dims[i]);
    }
    return text + "]";
}

void expectShape(KernelBase const& kernel, char const* name, std::vector<int64_t> const& actual,
    std::vector<int64_t> const& expected)
{
    if (actual != expected)
    {
        throw OpError(ORT_INVALID_ARGUMENT,
            kernel.where() + ": input '" + name + "' must be " + shapeText(expected) + ", got " + shapeText(actual));
    }
}

void checkArguments(std::string const& error)
{
    if (!error.empty())
    {
        throw OpError(ORT_INVALID_ARGUMENT, error);
    }
}

float const* inputData(OrtValue const* value)
{
    void const* data = nullptr;
    check(gApi->GetTensorData(value, &data));
    return static_cast<float const*>(data);
}

OrtValue const* input(OrtKernelContext* context, size_t index)
{
    OrtValue const* value = nullptr;
    check(gApi->KernelContext_GetInput(context, index, &value));
    return value;
}

float* output(OrtKernelContext* context, std::vector<int64_t> const& dims)
{
    OrtValue* value = nullptr;
    check(gApi->KernelContext_GetOutput(context, 0, dims.data(), dims.size(), &value));
    void* data = nullptr;
    check(gApi->GetTensorMutableData(value, &data));
    return static_cast<float*>(data);
}

//! A ParallelFor on the session's intra-op thread pool.
cpu::ParallelFor ortParallelFor(OrtKernelContext* context)
{
    return [context](int64_t total, std::function<void(int64_t)> const& body) {
        struct Call
        {
            std::function<void(int64_t)> const* body;
            std::exception_ptr error;
            std::mutex mutex;
        } call{&body, nullptr, {}};
        auto run = [](void* data, size_t index) {
            auto* c = static_cast<Call*>(data);
            try
            {
                (*c->body)(static_cast<int64_t>(index));
            }
            catch (...)
            {
                std::lock_guard<std::mutex> lock(c->mutex);
                c->error = c->error ? c->error : std::current_exception();
            }
        };
        check(gApi->KernelContext_ParallelFor(context, run, static_cast<size_t>(total), 0, &call));
        if (call.error)
        {
            std::rethrow_exception(call.error);
        }
    };
}

// ---- the two kernels ------------------------------------------------------------------------

//! Where a kernel runs: the CPU or the CUDA execution provider.
enum class Device
{
    kCpu,
    kCuda
};

#ifdef HARMONY_ORT_CUDA
//! Throw the message of a failed harmonyCuda* call.
void checkCudaOp(int32_t status)
{
    if (status != 0)
    {
        throw OpError(ORT_FAIL, harmonyCudaLastError());
    }
}

void* computeStream(OrtKernelContext* context)
{
    void* stream = nullptr;
    check(gApi->KernelContext_GetGPUComputeStream(context, &stream));
    return stream;
}

//! `bytes` of device memory from the session's CUDA allocator, given back on destruction (the
//! work queued on the session's one compute stream stays ordered before any later use).
class CudaScratch
{
public:
    CudaScratch(OrtKernelContext* context, size_t bytes)
    {
        int device = 0;
        if (cudaGetDevice(&device) != cudaSuccess)
        {
            throw OpError(ORT_FAIL, "cudaGetDevice failed");
        }
        OrtMemoryInfo* info = nullptr;
        check(gApi->CreateMemoryInfo("Cuda", OrtDeviceAllocator, device, OrtMemTypeDefault, &info));
        OrtStatus* status = gApi->KernelContext_GetAllocator(context, info, &mAllocator);
        gApi->ReleaseMemoryInfo(info);
        check(status);
        mData = mAllocator->Alloc(mAllocator, bytes);
        if (mData == nullptr)
        {
            gApi->ReleaseAllocator(mAllocator);
            throw OpError(ORT_FAIL, "cannot allocate " + std::to_string(bytes) + " bytes of KNN workspace");
        }
    }
    ~CudaScratch()
    {
        mAllocator->Free(mAllocator, mData);
        gApi->ReleaseAllocator(mAllocator);
    }
    CudaScratch(CudaScratch const&) = delete;
    CudaScratch& operator=(CudaScratch const&) = delete;

    void* data() const
    {
        return mData;
    }

private:
    OrtAllocator* mAllocator{nullptr};
    void* mData{nullptr};
};
#endif

struct CascadedLutKernel : KernelBase
{
    Device device{Device::kCpu};

    void compute(OrtKernelContext* context) const
    {
        using namespace hc;
        OrtValue const* image = input(context, 0);
        OrtValue const* mask = input(context, 1);
        OrtValue const* knots = input(context, 2);
        OrtValue const* curve = input(context, 3);
        std::vector<int64_t> const imageDims = inputShape(*this, image, kCascadedLutInputs[0], 4);
        std::vector<int64_t> const knotDims = inputShape(*this, knots, kCascadedLutInputs[2], 5);
        int64_t const b = imageDims[0];
        int64_t const h = imageDims[2];
        int64_t const w = imageDims[3];
        expectShape(*this, kCascadedLutInputs[0], imageDims, {b, kLutChannels, h, w});
        expectShape(*this, kCascadedLutInputs[1], inputShape(*this, mask, kCascadedLutInputs[1], 4), {b, 1, h, w});
        expectShape(*this, kCascadedLutInputs[2], knotDims, {b, kLutChannels, kLutKnots, knotDims[3], knotDims[4]});
        expectShape(*this, kCascadedLutInputs[3], inputShape(*this, curve, kCascadedLutInputs[3], 5),
            {b, kLutChannels, kLutCurvePoints, knotDims[3], knotDims[4]});
        checkArguments(cascadedLutArgumentError(b, h, w, knotDims[3], knotDims[4]));
#ifdef HARMONY_ORT_CUDA
        if (device == Device::kCuda)
        {
            checkCudaOp(harmonyCudaCascadedLut3D(kHarmonyCudaFloat32, inputData(image), inputData(mask),
                inputData(knots), inputData(curve), output(context, imageDims), static_cast<int32_t>(b),
                static_cast<int32_t>(h), static_cast<int32_t>(w), static_cast<int32_t>(knotDims[3]),
                static_cast<int32_t>(knotDims[4]), computeStream(context)));
            return;
        }
#endif
        cpu::cascadedLut3D(inputData(image), inputData(mask), inputData(knots), inputData(curve),
            output(context, imageDims), static_cast<int32_t>(b), static_cast<int32_t>(h), static_cast<int32_t>(w),
            static_cast<int32_t>(knotDims[3]), static_cast<int32_t>(knotDims[4]), ortParallelFor(context));
    }
};

struct KnnTopkFusionKernel : KernelBase
{
    Device device{Device::kCpu};
    int32_t k{hc::kKnnKDefault};

    void compute(OrtKernelContext* context) const
    {
        using namespace hc;
        OrtValue const* features = input(context, 0);
        OrtValue const* mask = input(context, 1);
        std::vector<int64_t> const dims = inputShape(*this, features, kKnnTopkFusionInputs[0], 4);
        expectShape(*this, kKnnTopkFusionInputs[1], inputShape(*this, mask, kKnnTopkFusionInputs[1], 4),
            {dims[0], 1, dims[2], dims[3]});
        int64_t const positions = dims[2] * dims[3];
        checkArguments(knnArgumentError(dims[0], dims[1], positions, k));
        auto const batch = static_cast<int32_t>(dims[0]);
#ifdef HARMONY_ORT_CUDA
        if (device == Device::kCuda)
        {
            uint64_t const bytes = harmonyCudaKnnTopkFusionWorkspaceSize(batch, static_cast<int32_t>(positions), k);
            CudaScratch const workspace(context, bytes);
            checkCudaOp(harmonyCudaKnnTopkFusion(kHarmonyCudaFloat32, inputData(features), inputData(mask),
                output(context, dims), workspace.data(), bytes, batch, static_cast<int32_t>(dims[1]),
                static_cast<int32_t>(positions), k, computeStream(context)));
            return;
        }
#endif
        cpu::knnTopkFusion(inputData(features), inputData(mask), output(context, dims), batch,
            static_cast<int32_t>(dims[1]), static_cast<int32_t>(positions), k, ortParallelFor(context));
    }
};

KnnTopkFusionKernel makeKnnKernel(OrtKernelInfo const* info, Device device)
{
    KnnTopkFusionKernel kernel{kernelBase(info, hc::kKnnTopkFusionName), device};
    int64_t k = hc::kKnnKDefault;
    OrtStatus* status = gApi->KernelInfoGetAttribute_int64(info, hc::kKnnAttrK, &k);
    if (status != nullptr) // absent: the contract's default
    {
        gApi->ReleaseStatus(status);
        k = hc::kKnnKDefault;
    }
    if (k < hc::kKnnKMin || k > hc::kKnnKMax)
    {
        throw OpError(ORT_INVALID_ARGUMENT,
            kernel.where() + ": attribute '" + hc::kKnnAttrK + "' must be in [" + std::to_string(hc::kKnnKMin) + ", "
                + std::to_string(hc::kKnnKMax) + "], got " + std::to_string(k));
    }
    kernel.k = static_cast<int32_t>(k);
    return kernel;
}

CascadedLutKernel makeLutKernel(OrtKernelInfo const* info, Device device)
{
    return CascadedLutKernel{kernelBase(info, hc::kCascadedLutName), device};
}

// ---- OrtCustomOp tables ---------------------------------------------------------------------

//! The OrtCustomOp of a kernel type on one execution provider: float32 tensors in and out.
template <typename Kernel, Kernel (*make)(OrtKernelInfo const*, Device), char const* const* name, int32_t nbInputs,
    Device device>
OrtCustomOp customOp()
{
    OrtCustomOp op{};
    op.version = ORT_API_VERSION;
    op.GetName = [](OrtCustomOp const*) { return *name; };
    op.GetExecutionProviderType = [](OrtCustomOp const*) -> char const* {
        return device == Device::kCuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";
    };
    op.GetInputType = [](OrtCustomOp const*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetInputTypeCount = [](OrtCustomOp const*) { return static_cast<size_t>(nbInputs); };
    op.GetOutputType = [](OrtCustomOp const*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetOutputTypeCount = [](OrtCustomOp const*) { return size_t{1}; };
    op.KernelDestroy = [](void* kernel) { delete static_cast<Kernel*>(kernel); };
    op.GetInputCharacteristic = [](OrtCustomOp const*, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetOutputCharacteristic = [](OrtCustomOp const*, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetInputMemoryType = [](OrtCustomOp const*, size_t) { return OrtMemTypeDefault; };
    op.GetVariadicInputMinArity = [](OrtCustomOp const*) { return 1; };
    op.GetVariadicInputHomogeneity = [](OrtCustomOp const*) { return 1; };
    op.GetVariadicOutputMinArity = [](OrtCustomOp const*) { return 1; };
    op.GetVariadicOutputHomogeneity = [](OrtCustomOp const*) { return 1; };
    op.CreateKernelV2 = [](OrtCustomOp const*, OrtApi const*, OrtKernelInfo const* info, void** kernel) {
        return guarded([&] { *kernel = new Kernel(make(info, device)); });
    };
    op.KernelComputeV2 = [](void* kernel, OrtKernelContext* context) {
        return guarded([&] { static_cast<Kernel const*>(kernel)->compute(context); });
    };
    op.GetStartVersion = [](OrtCustomOp const*) { return hc::kOnnxDomainVersion; };
    op.GetEndVersion = [](OrtCustomOp const*) { return hc::kOnnxDomainVersion; };
    return op;
}

template <Device device>
std::vector<OrtCustomOp> deviceOps()
{
    return {customOp<CascadedLutKernel, makeLutKernel, &hc::kCascadedLutName, hc::kCascadedLutNbInputs, device>(),
        customOp<KnnTopkFusionKernel, makeKnnKernel, &hc::kKnnTopkFusionName, hc::kKnnTopkFusionNbInputs, device>()};
}

//! Every op of the library: the CPU ones, and the CUDA ones in a build with CUDA.
std::vector<OrtCustomOp> const& allOps()
{
    static std::vector<OrtCustomOp> const ops = [] {
        std::vector<OrtCustomOp> all = deviceOps<Device::kCpu>();
#ifdef HARMONY_ORT_CUDA
        for (OrtCustomOp const& op : deviceOps<Device::kCuda>())
        {
            all.push_back(op);
        }
#endif
        return all;
    }();
    return ops;
}

//! The domains handed to sessions; ONNX Runtime needs them for as long as the sessions live.
struct Domains
{
    std::mutex mutex;
    std::vector<OrtCustomOpDomain*> domains;

    ~Domains()
    {
        for (OrtCustomOpDomain* domain : domains)
        {
            gApi->ReleaseCustomOpDomain(domain);
        }
    }
};

Domains& domains()
{
    static Domains instance;
    return instance;
}

} // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* RegisterCustomOps(
    OrtSessionOptions* options, OrtApiBase const* apiBase)
{
    OrtApi const* api = apiBase->GetApi(ORT_API_VERSION);
    if (api == nullptr)
    {
        std::string const message = std::string("libharmony_ort_ops.so was built against ONNX Runtime API version ")
            + std::to_string(ORT_API_VERSION) + ", newer than this ONNX Runtime (" + apiBase->GetVersionString()
            + "); rebuild it with that runtime's headers (scripts/build_plugins.sh, ONNXRUNTIME_ROOT)";
        return apiBase->GetApi(1)->CreateStatus(ORT_FAIL, message.c_str());
    }
    gApi = api;
    return guarded([&] {
        OrtCustomOpDomain* domain = nullptr;
        check(gApi->CreateCustomOpDomain(hc::kOnnxDomain, &domain));
        {
            std::lock_guard<std::mutex> lock(domains().mutex);
            domains().domains.push_back(domain);
        }
        for (OrtCustomOp const& op : allOps())
        {
            check(gApi->CustomOpDomain_Add(domain, &op));
        }
        check(gApi->AddCustomOpDomain(options, domain));
    });
}
