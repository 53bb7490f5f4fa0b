/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host harness of libharmony_plugins.so. Needs the TensorRT headers only (no libnvinfer):
 *   pluginHarness [path/to/libharmony_plugins.so]     (default: next to the executable)
 * 1. dlopens the library, installs a logger through setLoggerFinder, calls getCreators;
 * 2. checks each creator's name/version/namespace/fields against harmonyContract.h;
 * 3. creates both plugins from PluginFieldCollections and checks that bad attributes are
 *    rejected with a logged error;
 * 4. round-trips getFieldsToSerialize through the creator (TensorRTPhase::kRUNTIME);
 * 5. queries output shapes (through a minimal IExprBuilder written here) and types, the
 *    workspace size, configurePlugin/onShapeChange and supportsFormatCombination;
 * 6. only when a CUDA device is present: runs enqueue on device buffers (FP32 and FP16) and
 *    compares with libharmony_cpu_ops, which shares the kernels' math. Otherwise it says so.
 * Prints one PASS/FAIL/SKIP line per check; exits 0 when nothing failed.
 */
#include "common/harmonyContract.h"
#include "cpu/harmonyCpuOps.h"

#include "NvInferRuntime.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace nvinfer1;
namespace hc = harmony::contract;

namespace
{

int32_t gFailures{0};

void report(bool ok, std::string const& what)
{
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
    if (!ok)
    {
        ++gFailures;
    }
}

//! Keeps the last error the library logged.
class CapturingLogger : public ILogger
{
public:
    void log(Severity severity, char const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            mLastError = msg;
            std::printf("  (logged) %s\n", msg);
        }
    }
    std::string takeLastError()
    {
        std::string error;
        error.swap(mLastError);
        return error;
    }

private:
    std::string mLastError;
};

class CapturingLoggerFinder : public ILoggerFinder
{
public:
    explicit CapturingLoggerFinder(CapturingLogger& logger)
        : mLogger(logger)
    {
    }
    ILogger* findLogger() override
    {
        return &mLogger;
    }

private:
    CapturingLogger& mLogger;
};

//! A constant dimension expression (the harness only ever deals with known shapes).
class HarnessDimExpr : public IDimensionExpr, public apiv::VDimensionExpr
{
public:
    explicit HarnessDimExpr(int64_t value)
        : mValue(value)
    {
        mImpl = this;
    }
    ~HarnessDimExpr() noexcept override = default;
    bool isConstant() const override
    {
        return true;
    }
    int64_t getConstantValue() const override
    {
        return mValue;
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    int64_t mValue;
};

//! Minimal IExprBuilder over constants; owns every expression it hands out.
class HarnessExprBuilder : public IExprBuilder, public apiv::VExprBuilder
{
public:
    HarnessExprBuilder()
    {
        mImpl = this;
    }
    ~HarnessExprBuilder() noexcept override = default;

    IDimensionExpr const* constant(int64_t value) override
    {
        mExprs.push_back(std::make_unique<HarnessDimExpr>(value));
        return mExprs.back().get();
    }

    IDimensionExpr const* operation(
        DimensionOperation op, IDimensionExpr const& first, IDimensionExpr const& second) override
    {
        int64_t const a = first.getConstantValue();
        int64_t const b = second.getConstantValue();
        switch (op)
        {
        case DimensionOperation::kSUM: return constant(a + b);
        case DimensionOperation::kPROD: return constant(a * b);
        case DimensionOperation::kMAX: return constant(std::max(a, b));
        case DimensionOperation::kMIN: return constant(std::min(a, b));
        case DimensionOperation::kSUB: return constant(a - b);
        case DimensionOperation::kEQUAL: return constant(a == b ? 1 : 0);
        case DimensionOperation::kLESS: return constant(a < b ? 1 : 0);
        case DimensionOperation::kFLOOR_DIV:
            return b == 0 ? nullptr : constant(a / b - ((a % b != 0) && ((a < 0) != (b < 0))));
        case DimensionOperation::kCEIL_DIV:
            return b == 0 ? nullptr : constant(-((-a) / b - (((-a) % b != 0) && (((-a) < 0) != (b < 0)))));
        }
        return nullptr;
    }

    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr; // neither plugin has size-tensor outputs
    }

    DimsExprs fromDims(std::vector<int64_t> const& dims)
    {
        DimsExprs exprs{};
        exprs.nbDims = static_cast<int32_t>(dims.size());
        for (size_t i = 0; i < dims.size(); ++i)
        {
            exprs.d[i] = constant(dims[i]);
        }
        return exprs;
    }

private:
    std::vector<std::unique_ptr<HarnessDimExpr>> mExprs;
};

Dims makeDims(std::vector<int64_t> const& values)
{
    Dims dims{};
    dims.nbDims = static_cast<int32_t>(values.size());
    for (size_t i = 0; i < values.size(); ++i)
    {
        dims.d[i] = values[i];
    }
    return dims;
}

DynamicPluginTensorDesc makeDesc(
    std::vector<int64_t> const& shape, DataType type, TensorFormat format = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc desc{};
    desc.desc.dims = makeDims(shape);
    desc.desc.type = type;
    desc.desc.format = format;
    desc.desc.scale = 1.F;
    desc.min = desc.desc.dims;
    desc.opt = desc.desc.dims;
    desc.max = desc.desc.dims;
    return desc;
}

struct PluginHandle
{
    IPluginV3* plugin{nullptr};
    IPluginV3OneCore* core{nullptr};
    IPluginV3OneBuild* build{nullptr};
    IPluginV3OneRuntime* runtime{nullptr};
};

PluginHandle interfaces(IPluginV3* plugin)
{
    PluginHandle handle;
    handle.plugin = plugin;
    if (plugin == nullptr)
    {
        return handle;
    }
    handle.core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    handle.build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    handle.runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    return handle;
}

void destroy(IPluginV3* plugin)
{
    delete plugin;
}

IPluginV3* createWithK(
    IPluginCreatorV3One* creator, PluginFieldType type, void const* data, char const* name = hc::kKnnAttrK)
{
    PluginField field(name, data, type, 1);
    PluginFieldCollection fc{1, &field};
    return creator->createPlugin("knn", &fc, TensorRTPhase::kBUILD);
}

std::vector<int64_t> outputShape(PluginHandle const& h, std::vector<std::vector<int64_t>> const& inputs)
{
    HarnessExprBuilder builder;
    std::vector<DimsExprs> in;
    for (auto const& shape : inputs)
    {
        in.push_back(builder.fromDims(shape));
    }
    DimsExprs out{};
    if (h.build->getOutputShapes(in.data(), static_cast<int32_t>(in.size()), nullptr, 0, &out, 1, builder) != 0)
    {
        return {};
    }
    std::vector<int64_t> shape;
    for (int32_t i = 0; i < out.nbDims; ++i)
    {
        shape.push_back(out.d[i] != nullptr && out.d[i]->isConstant() ? out.d[i]->getConstantValue() : -2);
    }
    return shape;
}

std::string shapeText(std::vector<int64_t> const& shape)
{
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i)
    {
        text += (i ? "," : "") + std::to_string(shape[i]);
    }
    return text + "]";
}

//! supportsFormatCombination for every position of one combination; true when all accept.
bool acceptsAll(PluginHandle const& h, std::vector<DynamicPluginTensorDesc> const& inOut, int32_t nbInputs)
{
    bool all = true;
    for (int32_t pos = 0; pos < static_cast<int32_t>(inOut.size()); ++pos)
    {
        all = all && h.build->supportsFormatCombination(pos, inOut.data(), nbInputs, 1);
    }
    return all;
}

void checkCreator(IPluginCreatorV3One* creator, char const* expectedName, std::vector<char const*> const& fields)
{
    std::string const name = expectedName;
    report(std::strcmp(creator->getPluginVersion(), hc::kPluginVersion) == 0, name + " creator version");
    report(std::strcmp(creator->getPluginNamespace(), hc::kPluginNamespace) == 0, name + " creator namespace");
    PluginFieldCollection const* fc = creator->getFieldNames();
    bool ok = fc != nullptr && fc->nbFields == static_cast<int32_t>(fields.size());
    for (size_t i = 0; ok && i < fields.size(); ++i)
    {
        ok = std::strcmp(fc->fields[i].name, fields[i]) == 0;
    }
    report(ok, name + " creator field names");
}

void checkCore(PluginHandle const& h, char const* expectedName)
{
    std::string const name = expectedName;
    report(h.core != nullptr && h.build != nullptr && h.runtime != nullptr, name + " capability interfaces");
    report(h.core != nullptr && std::strcmp(h.core->getPluginName(), expectedName) == 0
               && std::strcmp(h.core->getPluginVersion(), hc::kPluginVersion) == 0
               && std::strcmp(h.core->getPluginNamespace(), hc::kPluginNamespace) == 0,
        name + " plugin name/version/namespace");
}

// ---------------------------------------------------------------------------------------------
// enqueue (only with a CUDA device)

bool hasCudaDevice()
{
    int32_t count = 0;
    cudaError_t const status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess)
    {
        cudaGetLastError();
        return false;
    }
    return count > 0;
}

template <typename T>
std::vector<T> convert(std::vector<float> const& values)
{
    std::vector<T> out(values.size());
    for (size_t i = 0; i < values.size(); ++i)
    {
        out[i] = static_cast<T>(values[i]);
    }
    return out;
}

template <typename T>
std::vector<float> toFloats(std::vector<T> const& values)
{
    std::vector<float> out(values.size());
    for (size_t i = 0; i < values.size(); ++i)
    {
        out[i] = static_cast<float>(values[i]);
    }
    return out;
}

//! Runs `h.runtime->enqueue` on device copies of `inputs` (type T) and returns the output as floats.
template <typename T>
bool runEnqueue(PluginHandle const& h, std::vector<std::vector<float>> const& inputs,
    std::vector<std::vector<int64_t>> const& shapes, std::vector<int64_t> const& outShape, size_t workspaceBytes,
    DataType type, std::vector<float>& result)
{
    std::vector<void*> deviceInputs;
    std::vector<PluginTensorDesc> inDescs;
    bool ok = true;
    for (size_t i = 0; i < inputs.size(); ++i)
    {
        std::vector<T> const host = convert<T>(inputs[i]);
        void* device = nullptr;
        ok = ok && cudaMalloc(&device, host.size() * sizeof(T)) == cudaSuccess;
        ok = ok && cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess;
        deviceInputs.push_back(device);
        inDescs.push_back(makeDesc(shapes[i], type).desc);
    }
    size_t outCount = 1;
    for (int64_t d : outShape)
    {
        outCount *= static_cast<size_t>(d);
    }
    void* deviceOut = nullptr;
    void* workspace = nullptr;
    ok = ok && cudaMalloc(&deviceOut, outCount * sizeof(T)) == cudaSuccess;
    ok = ok && (workspaceBytes == 0 || cudaMalloc(&workspace, workspaceBytes) == cudaSuccess);
    PluginTensorDesc outDesc = makeDesc(outShape, type).desc;
    std::vector<void const*> constInputs(deviceInputs.begin(), deviceInputs.end());
    void* outputs[]{deviceOut};
    ok = ok && h.runtime->onShapeChange(inDescs.data(), static_cast<int32_t>(inDescs.size()), &outDesc, 1) == 0;
    ok = ok && h.runtime->enqueue(inDescs.data(), &outDesc, constInputs.data(), outputs, workspace, nullptr) == 0;
    ok = ok && cudaDeviceSynchronize() == cudaSuccess;
    std::vector<T> host(outCount);
    ok = ok && cudaMemcpy(host.data(), deviceOut, outCount * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess;
    result = toFloats(host);
    for (void* p : deviceInputs)
    {
        cudaFree(p);
    }
    cudaFree(deviceOut);
    cudaFree(workspace);
    return ok;
}

float maxAbsDiff(std::vector<float> const& a, std::vector<float> const& b)
{
    if (a.size() != b.size())
    {
        return INFINITY;
    }
    float diff = 0.F;
    for (size_t i = 0; i < a.size(); ++i)
    {
        // Equal values (infinities included) and NaN on both sides match; NaN on one side does not.
        bool const same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]));
        float const d = same ? 0.F : std::fabs(a[i] - b[i]);
        diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    }
    return diff;
}

std::vector<float> uniform(size_t n, float lo, float hi, std::mt19937& rng)
{
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v)
    {
        x = dist(rng);
    }
    return v;
}

//! Values as the device sees them in FP16: rounded to half and back.
std::vector<float> roundedToHalf(std::vector<float> const& values)
{
    return toFloats(convert<__half>(values));
}

void enqueueCascadedLut(PluginHandle const& h)
{
    std::mt19937 rng(7);
    int32_t const b = 2, height = 37, width = 53, mh = 7, mw = 5;
    size_t const pixels = static_cast<size_t>(height) * width;
    size_t const plane = static_cast<size_t>(mh) * mw;
    std::vector<float> image = uniform(b * 3 * pixels, -0.1F, 1.1F, rng);
    std::vector<float> mask = uniform(b * pixels, 0.F, 1.F, rng);
    std::vector<float> knots(b * 3 * hc::kLutKnots * plane);
    // Monotone knots from 0 to 1 per (b, c, position).
    for (size_t bc = 0; bc < static_cast<size_t>(b) * 3; ++bc)
    {
        for (size_t p = 0; p < plane; ++p)
        {
            std::vector<float> steps = uniform(hc::kLutKnots - 1, 0.1F, 1.F, rng);
            float total = 0.F;
            for (float s : steps)
            {
                total += s;
            }
            float acc = 0.F;
            knots[(bc * hc::kLutKnots) * plane + p] = 0.F;
            for (int32_t k = 1; k < hc::kLutKnots; ++k)
            {
                acc += steps[k - 1] / total;
                knots[(bc * hc::kLutKnots + k) * plane + p] = acc;
            }
        }
    }
    std::vector<float> curve = uniform(b * 3 * hc::kLutCurvePoints * plane, -0.2F, 1.2F, rng);
    std::vector<std::vector<int64_t>> const shapes{{b, 3, height, width}, {b, 1, height, width},
        {b, 3, hc::kLutKnots, mh, mw}, {b, 3, hc::kLutCurvePoints, mh, mw}};
    for (bool const half : {false, true})
    {
        std::vector<std::vector<float>> inputs{image, mask, knots, curve};
        if (half)
        {
            for (auto& input : inputs)
            {
                input = roundedToHalf(input);
            }
        }
        std::vector<float> expected(b * 3 * pixels);
        harmonyCascadedLut3DFloat(inputs[0].data(), inputs[1].data(), inputs[2].data(), inputs[3].data(),
            expected.data(), b, height, width, mh, mw);
        std::vector<float> actual;
        bool const ok = half ? runEnqueue<__half>(h, inputs, shapes, shapes[0], 0, DataType::kHALF, actual)
                             : runEnqueue<float>(h, inputs, shapes, shapes[0], 0, DataType::kFLOAT, actual);
        // FP16: the same FP32 math on the same (rounded) inputs; only the output is rounded.
        float const tolerance = half ? 1e-3F : 1e-5F;
        float const diff = maxAbsDiff(actual, expected);
        report(ok && diff <= tolerance, std::string(hc::kCascadedLutName) + " enqueue " + (half ? "FP16" : "FP32")
                                            + " vs CPU library (max abs diff " + std::to_string(diff) + ")");
    }
}

//! Masks of the KnnTopkFusion enqueue checks. kZeros: every query row is all zero (every tile is
//! skipped; values 0 at indices 0..k-1, the output is a weighted sum of S[:, 0..k-1]). kOnes: the
//! support is all zero, so every dot product is an exact 0 (ties everywhere, every one of them
//! must beat the running list's initial entry; the output itself is 0).
enum class KnnMask
{
    kBinary,
    kSoft,
    kZeros,
    kOnes,
};

char const* knnMaskName(KnnMask kind)
{
    switch (kind)
    {
    case KnnMask::kBinary: return "binary";
    case KnnMask::kSoft: return "soft";
    case KnnMask::kZeros: return "all-zero";
    case KnnMask::kOnes: return "all-one";
    }
    return "?";
}

//! `integer`: features in {-1, 0, 1, 2}, so every dot product is exact on both sides and exact ties
//! between support positions in different tiles are decided by the tie rule alone (lowest index).
//! `nonFinite`: batch 1 gets a NaN and an infinity in its features (every top-k value of a query
//! can then be NaN: the running list must still end with real indices, as the CPU library's does).
void enqueueKnn(IPluginCreatorV3One* creator, int32_t k, int32_t c, int32_t height, int32_t width, KnnMask maskKind,
    bool half, bool integer = false, bool nonFinite = false)
{
    bool const softMask = maskKind == KnnMask::kSoft;
    int32_t const b = 2;
    int32_t const n = height * width;
    std::mt19937 rng(11 + k + c);
    std::vector<float> features = uniform(static_cast<size_t>(b) * c * n, -1.F, 1.F, rng);
    if (integer)
    {
        for (float& x : features)
        {
            x = static_cast<float>(static_cast<int32_t>(rng() % 4) - 1);
        }
    }
    std::vector<float> mask(static_cast<size_t>(b) * n);
    for (size_t i = 0; i < mask.size(); ++i)
    {
        // Batch 1 of the binary case has a top half of background: whole query tiles are skipped.
        bool const background = !softMask && i >= static_cast<size_t>(n) && i < static_cast<size_t>(n + n / 2);
        mask[i] = softMask ? uniform(1, 0.F, 1.F, rng)[0] : (background ? 0.F : (rng() % 2 ? 1.F : 0.F));
        if (maskKind == KnnMask::kZeros || maskKind == KnnMask::kOnes)
        {
            mask[i] = maskKind == KnnMask::kOnes ? 1.F : 0.F;
        }
    }
    if (nonFinite)
    {
        size_t const batch1 = static_cast<size_t>(c) * n;
        features[batch1 + static_cast<size_t>(n / 3)] = NAN;
        features[batch1 + static_cast<size_t>(c - 1) * n + static_cast<size_t>(n - 1)] = INFINITY;
    }
    if (half)
    {
        features = roundedToHalf(features);
        mask = roundedToHalf(mask);
    }
    std::vector<float> expected(features.size());
    harmonyKnnTopkFusionFloat(features.data(), mask.data(), expected.data(), b, c, n, k);
    std::vector<std::vector<int64_t>> const shapes{{b, c, height, width}, {b, 1, height, width}};
    DataType const type = half ? DataType::kHALF : DataType::kFLOAT;
    std::vector<DynamicPluginTensorDesc> desc{makeDesc(shapes[0], type), makeDesc(shapes[1], type)};
    DynamicPluginTensorDesc outDesc = makeDesc(shapes[0], type);
    PluginHandle h = interfaces(createWithK(creator, PluginFieldType::kINT32, &k));
    std::vector<float> actual;
    bool ok = h.plugin != nullptr;
    if (ok)
    {
        size_t const workspace = h.build->getWorkspaceSize(desc.data(), 2, &outDesc, 1);
        ok = half ? runEnqueue<__half>(h, {features, mask}, shapes, shapes[0], workspace, type, actual)
                  : runEnqueue<float>(h, {features, mask}, shapes, shapes[0], workspace, type, actual);
    }
    float const tolerance = half ? 2e-3F : 1e-5F;
    float const diff = maxAbsDiff(actual, expected);
    report(ok && diff <= tolerance,
        std::string(hc::kKnnTopkFusionName) + " enqueue " + std::string(half ? "FP16" : "FP32")
            + " k=" + std::to_string(k) + " C=" + std::to_string(c) + " " + std::to_string(height) + "x"
            + std::to_string(width) + " " + knnMaskName(maskKind) + " mask" + (integer ? " integer features" : "")
            + (nonFinite ? " with NaN/inf features" : "") + " vs CPU library (max abs diff " + std::to_string(diff)
            + ")");
    destroy(h.plugin);
}

} // namespace

int main(int argc, char** argv)
{
    std::string path;
    if (argc > 1)
    {
        path = argv[1];
    }
    else
    {
        std::string const self = argv[0];
        size_t const slash = self.rfind('/');
        path = (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/libharmony_plugins.so";
    }
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
    {
        std::printf("FAIL dlopen %s: %s\n", path.c_str(), dlerror());
        return 1;
    }
    report(true, "dlopen " + path + " (nothing called CUDA at load time)");

    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(library, "setLoggerFinder"));
    report(getCreators != nullptr && setLoggerFinder != nullptr, "exports getCreators and setLoggerFinder");
    if (getCreators == nullptr || setLoggerFinder == nullptr)
    {
        return 1;
    }
    CapturingLogger logger;
    CapturingLoggerFinder finder(logger);
    setLoggerFinder(&finder);

    int32_t nbCreators = 0;
    IPluginCreatorInterface* const* creators = getCreators(nbCreators);
    report(creators != nullptr && nbCreators == 2, "getCreators returns 2 creators");
    IPluginCreatorV3One* lutCreator = nullptr;
    IPluginCreatorV3One* knnCreator = nullptr;
    for (int32_t i = 0; creators != nullptr && i < nbCreators; ++i)
    {
        InterfaceInfo const info = creators[i]->getInterfaceInfo();
        if (std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") != 0)
        {
            report(false, std::string("creator interface kind is ") + info.kind);
            continue;
        }
        auto* creator = static_cast<IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(creator->getPluginName(), hc::kCascadedLutName) == 0)
        {
            lutCreator = creator;
        }
        else if (std::strcmp(creator->getPluginName(), hc::kKnnTopkFusionName) == 0)
        {
            knnCreator = creator;
        }
    }
    report(lutCreator != nullptr && knnCreator != nullptr,
        std::string("creators ") + hc::kCascadedLutName + " and " + hc::kKnnTopkFusionName + " found");
    if (lutCreator == nullptr || knnCreator == nullptr)
    {
        return 1;
    }
    checkCreator(lutCreator, hc::kCascadedLutName, {});
    checkCreator(knnCreator, hc::kKnnTopkFusionName, {hc::kKnnAttrK});

    // ---- attribute validation -------------------------------------------------------------
    for (int32_t bad : {0, 33, -1})
    {
        IPluginV3* plugin = createWithK(knnCreator, PluginFieldType::kINT32, &bad);
        std::string const error = logger.takeLastError();
        report(plugin == nullptr && error.find("'k' must be in [1, 32]") != std::string::npos,
            std::string(hc::kKnnTopkFusionName) + " rejects k=" + std::to_string(bad) + " with a logged error");
        destroy(plugin);
    }
    {
        float const wrongType = 2.F;
        IPluginV3* plugin = createWithK(knnCreator, PluginFieldType::kFLOAT32, &wrongType);
        report(plugin == nullptr && !logger.takeLastError().empty(),
            std::string(hc::kKnnTopkFusionName) + " rejects a float k");
        destroy(plugin);
        int64_t const wide = 3;
        plugin = createWithK(knnCreator, PluginFieldType::kINT64, &wide);
        PluginHandle h = interfaces(plugin);
        PluginFieldCollection const* fields = h.runtime != nullptr ? h.runtime->getFieldsToSerialize() : nullptr;
        report(fields != nullptr && *static_cast<int32_t const*>(fields->fields[0].data) == 3,
            std::string(hc::kKnnTopkFusionName)
                + " accepts k as INT64 (ONNX's integer type) and serializes it as INT32");
        destroy(plugin);
        int64_t const wideBad = 64;
        plugin = createWithK(knnCreator, PluginFieldType::kINT64, &wideBad);
        report(plugin == nullptr && logger.takeLastError().find("'k' must be in [1, 32]") != std::string::npos,
            std::string(hc::kKnnTopkFusionName) + " rejects an INT64 k=64");
        destroy(plugin);
        int32_t const one = 1;
        plugin = createWithK(knnCreator, PluginFieldType::kINT32, &one, "kk");
        report(plugin == nullptr && logger.takeLastError().find("unknown attribute 'kk'") != std::string::npos,
            std::string(hc::kKnnTopkFusionName) + " rejects an unknown attribute");
        destroy(plugin);
        plugin = createWithK(lutCreator, PluginFieldType::kINT32, &one, hc::kKnnAttrK);
        report(plugin == nullptr && logger.takeLastError().find("unknown attribute 'k'") != std::string::npos,
            std::string(hc::kCascadedLutName) + " rejects an unknown attribute");
        destroy(plugin);
    }
    {
        PluginFieldCollection empty{0, nullptr};
        IPluginV3* plugin = knnCreator->createPlugin("knn", &empty, TensorRTPhase::kBUILD);
        PluginHandle h = interfaces(plugin);
        PluginFieldCollection const* fields = h.runtime != nullptr ? h.runtime->getFieldsToSerialize() : nullptr;
        report(fields != nullptr && fields->nbFields == 1
                   && *static_cast<int32_t const*>(fields->fields[0].data) == hc::kKnnKDefault,
            std::string(hc::kKnnTopkFusionName) + " without attributes uses the default k=1");
        destroy(plugin);
    }

    // ---- CascadedLut3D ----------------------------------------------------------------------
    PluginFieldCollection empty{0, nullptr};
    PluginHandle lut = interfaces(lutCreator->createPlugin("lut", &empty, TensorRTPhase::kBUILD));
    report(lut.plugin != nullptr, std::string(hc::kCascadedLutName) + " created");
    if (lut.plugin == nullptr)
    {
        return 1;
    }
    checkCore(lut, hc::kCascadedLutName);
    {
        PluginFieldCollection const* fields = lut.runtime->getFieldsToSerialize();
        PluginHandle again = interfaces(lutCreator->createPlugin("lut", fields, TensorRTPhase::kRUNTIME));
        report(fields != nullptr && fields->nbFields == 0 && again.plugin != nullptr,
            std::string(hc::kCascadedLutName) + " serialization round trip (no fields)");
        destroy(again.plugin);
        PluginHandle copy = interfaces(lut.plugin->clone());
        report(copy.plugin != nullptr && std::strcmp(copy.core->getPluginName(), hc::kCascadedLutName) == 0,
            std::string(hc::kCascadedLutName) + " clone");
        destroy(copy.plugin);
    }
    report(lut.build->getNbOutputs() == 1, std::string(hc::kCascadedLutName) + " has 1 output");
    std::vector<std::vector<int64_t>> const lutShapes{{2, 3, 37, 53}, {2, 1, 37, 53}, {2, 3, 9, 7, 5}, {2, 3, 8, 7, 5}};
    std::vector<int64_t> const lutOut = outputShape(lut, lutShapes);
    report(lutOut == lutShapes[0], std::string(hc::kCascadedLutName) + " output shape " + shapeText(lutOut));
    for (DataType type : {DataType::kFLOAT, DataType::kHALF})
    {
        DataType const in[]{type, type, type, type};
        DataType out{DataType::kINT32};
        report(lut.build->getOutputDataTypes(&out, 1, in, 4) == 0 && out == type,
            std::string(hc::kCascadedLutName) + " output type follows the image ("
                + std::to_string(static_cast<int32_t>(type)) + ")");
    }
    {
        DataType const in[]{DataType::kINT8, DataType::kINT8, DataType::kINT8, DataType::kINT8};
        DataType out{};
        report(lut.build->getOutputDataTypes(&out, 1, in, 4) != 0 && !logger.takeLastError().empty(),
            std::string(hc::kCascadedLutName) + " rejects INT8 output type");
    }
    {
        auto combo = [&](DataType t0, DataType t1, TensorFormat f = TensorFormat::kLINEAR)
        {
            return std::vector<DynamicPluginTensorDesc>{makeDesc(lutShapes[0], t0, f), makeDesc(lutShapes[1], t1),
                makeDesc(lutShapes[2], t0), makeDesc(lutShapes[3], t0), makeDesc(lutShapes[0], t0)};
        };
        report(acceptsAll(lut, combo(DataType::kFLOAT, DataType::kFLOAT), 4),
            std::string(hc::kCascadedLutName) + " supports FP32 linear");
        report(acceptsAll(lut, combo(DataType::kHALF, DataType::kHALF), 4),
            std::string(hc::kCascadedLutName) + " supports FP16 linear");
        report(!acceptsAll(lut, combo(DataType::kFLOAT, DataType::kHALF), 4),
            std::string(hc::kCascadedLutName) + " rejects mixed FP32/FP16");
        report(!acceptsAll(lut, combo(DataType::kINT8, DataType::kINT8), 4),
            std::string(hc::kCascadedLutName) + " rejects INT8");
        report(!acceptsAll(lut, combo(DataType::kHALF, DataType::kHALF, TensorFormat::kHWC8), 4),
            std::string(hc::kCascadedLutName) + " rejects a non-linear format");
        auto good = combo(DataType::kFLOAT, DataType::kFLOAT);
        report(lut.build->configurePlugin(good.data(), 4, &good[4], 1) == 0,
            std::string(hc::kCascadedLutName) + " configurePlugin");
        auto bad = combo(DataType::kFLOAT, DataType::kFLOAT);
        bad[2] = makeDesc({2, 3, 8, 7, 5}, DataType::kFLOAT);
        report(lut.build->configurePlugin(bad.data(), 4, &bad[4], 1) != 0
                   && logger.takeLastError().find("[B,3,9,h,w]") != std::string::npos,
            std::string(hc::kCascadedLutName) + " configurePlugin rejects 8 knots");
        auto dynamic = combo(DataType::kFLOAT, DataType::kFLOAT);
        for (auto& d : dynamic)
        {
            d.desc.dims.d[0] = -1;
            d.desc.dims.d[d.desc.dims.nbDims - 1] = -1;
        }
        report(lut.build->configurePlugin(dynamic.data(), 4, &dynamic[4], 1) == 0,
            std::string(hc::kCascadedLutName) + " configurePlugin accepts dynamic dimensions");
        auto huge = dynamic;
        for (auto& d : huge)
        {
            d.max.d[0] = 65536;
        }
        report(lut.build->configurePlugin(huge.data(), 4, &huge[4], 1) != 0
                   && logger.takeLastError().find("<= 65535") != std::string::npos,
            std::string(hc::kCascadedLutName) + " configurePlugin rejects a profile with B > 65535 (grid z)");
        report(lut.build->getWorkspaceSize(good.data(), 4, &good[4], 1) == 0,
            std::string(hc::kCascadedLutName) + " needs no workspace");
        std::vector<PluginTensorDesc> run;
        for (auto const& d : good)
        {
            run.push_back(d.desc);
        }
        report(lut.runtime->onShapeChange(run.data(), 4, &run[4], 1) == 0,
            std::string(hc::kCascadedLutName) + " onShapeChange");
        run[1].dims = makeDims({2, 1, 36, 53});
        report(lut.runtime->onShapeChange(run.data(), 4, &run[4], 1) != 0 && !logger.takeLastError().empty(),
            std::string(hc::kCascadedLutName) + " onShapeChange rejects a mask of another size");
    }

    // ---- KnnTopkFusion ----------------------------------------------------------------------
    int32_t const k = 4;
    PluginHandle knn = interfaces(createWithK(knnCreator, PluginFieldType::kINT32, &k));
    report(knn.plugin != nullptr, std::string(hc::kKnnTopkFusionName) + " created with k=4");
    if (knn.plugin == nullptr)
    {
        return 1;
    }
    checkCore(knn, hc::kKnnTopkFusionName);
    {
        PluginFieldCollection const* fields = knn.runtime->getFieldsToSerialize();
        bool ok = fields != nullptr && fields->nbFields == 1 && std::strcmp(fields->fields[0].name, hc::kKnnAttrK) == 0
                  && fields->fields[0].type == PluginFieldType::kINT32;
        PluginHandle again = interfaces(knnCreator->createPlugin("knn", fields, TensorRTPhase::kRUNTIME));
        PluginFieldCollection const* fieldsAgain
            = again.runtime != nullptr ? again.runtime->getFieldsToSerialize() : nullptr;
        ok = ok && fieldsAgain != nullptr && *static_cast<int32_t const*>(fieldsAgain->fields[0].data) == k;
        report(ok, std::string(hc::kKnnTopkFusionName) + " serialization round trip keeps k=4");
        destroy(again.plugin);
    }
    std::vector<std::vector<int64_t>> const knnShapes{{2, 24, 13, 11}, {2, 1, 13, 11}};
    std::vector<int64_t> const knnOut = outputShape(knn, knnShapes);
    report(knnOut == knnShapes[0], std::string(hc::kKnnTopkFusionName) + " output shape " + shapeText(knnOut));
    {
        DataType const in[]{DataType::kHALF, DataType::kHALF};
        DataType out{};
        report(knn.build->getOutputDataTypes(&out, 1, in, 2) == 0 && out == DataType::kHALF,
            std::string(hc::kKnnTopkFusionName) + " output type follows the features");
        auto combo = [&](DataType t0, DataType t1)
        {
            return std::vector<DynamicPluginTensorDesc>{
                makeDesc(knnShapes[0], t0), makeDesc(knnShapes[1], t1), makeDesc(knnShapes[0], t0)};
        };
        report(acceptsAll(knn, combo(DataType::kFLOAT, DataType::kFLOAT), 2),
            std::string(hc::kKnnTopkFusionName) + " supports FP32 linear");
        report(acceptsAll(knn, combo(DataType::kHALF, DataType::kHALF), 2),
            std::string(hc::kKnnTopkFusionName) + " supports FP16 linear");
        report(!acceptsAll(knn, combo(DataType::kHALF, DataType::kFLOAT), 2),
            std::string(hc::kKnnTopkFusionName) + " rejects mixed types");
        report(!acceptsAll(knn, combo(DataType::kINT32, DataType::kINT32), 2),
            std::string(hc::kKnnTopkFusionName) + " rejects INT32");
        auto good = combo(DataType::kFLOAT, DataType::kFLOAT);
        report(knn.build->configurePlugin(good.data(), 2, &good[2], 1) == 0,
            std::string(hc::kKnnTopkFusionName) + " configurePlugin");
        auto tiny = std::vector<DynamicPluginTensorDesc>{makeDesc({1, 8, 1, 3}, DataType::kFLOAT),
            makeDesc({1, 1, 1, 3}, DataType::kFLOAT), makeDesc({1, 8, 1, 3}, DataType::kFLOAT)};
        report(knn.build->configurePlugin(tiny.data(), 2, &tiny[2], 1) != 0
                   && logger.takeLastError().find("exceeds the number of positions") != std::string::npos,
            std::string(hc::kKnnTopkFusionName) + " rejects k > h*w");
        for (int32_t axis : {0, 1})
        {
            auto huge = combo(DataType::kFLOAT, DataType::kFLOAT);
            huge[0].desc.dims.d[axis] = -1;
            huge[0].max.d[axis] = 65536;
            report(knn.build->configurePlugin(huge.data(), 2, &huge[2], 1) != 0
                       && logger.takeLastError().find("<= 65535") != std::string::npos,
                std::string(hc::kKnnTopkFusionName) + " configurePlugin rejects a profile with "
                    + (axis == 0 ? "B" : "C") + " > 65535 (grid dimension)");
        }
        // Workspace is O(B * N * k): for 64x64 positions far below one N x N matrix.
        auto large = std::vector<DynamicPluginTensorDesc>{makeDesc({1, 256, 64, 64}, DataType::kFLOAT),
            makeDesc({1, 1, 64, 64}, DataType::kFLOAT), makeDesc({1, 256, 64, 64}, DataType::kFLOAT)};
        size_t const bytes = knn.build->getWorkspaceSize(large.data(), 2, &large[2], 1);
        size_t const n = 64 * 64;
        report(bytes >= n * k * 8 && bytes < n * k * 8 + n + 4096,
            std::string(hc::kKnnTopkFusionName) + " workspace is O(N*k): " + std::to_string(bytes)
                + " bytes for N=4096, k=4 (N*N*4 would be " + std::to_string(n * n * 4) + ")");
    }

    // ---- enqueue ----------------------------------------------------------------------------
    if (hasCudaDevice())
    {
        enqueueCascadedLut(lut);
        for (bool const half : {false, true})
        {
            for (int32_t kk : {1, 4, 32})
            {
                enqueueKnn(knnCreator, kk, 24, 13, 11, KnnMask::kBinary, half);
                enqueueKnn(knnCreator, kk, 24, 13, 11, KnnMask::kSoft, half);
                enqueueKnn(knnCreator, kk, 24, 13, 11, KnnMask::kZeros, half);
                enqueueKnn(knnCreator, kk, 24, 13, 11, KnnMask::kOnes, half);
            }
            enqueueKnn(knnCreator, 8, 64, 32, 32, KnnMask::kBinary, half);
            for (int32_t kk : {1, 4, 32})
            {
                enqueueKnn(knnCreator, kk, 5, 21, 13, KnnMask::kBinary, half, true);
            }
            enqueueKnn(knnCreator, 1, 24, 13, 11, KnnMask::kSoft, half, false, true);
            enqueueKnn(knnCreator, 4, 24, 13, 11, KnnMask::kBinary, half, false, true);
        }
    }
    else
    {
        std::printf("SKIP enqueue: no CUDA device (host-only checks ran; kernels were not executed)\n");
    }
    destroy(lut.plugin);
    destroy(knn.plugin);
    std::printf("%s: %d failure(s)\n", gFailures == 0 ? "OK" : "FAILED", gFailures);
    // The library stays loaded: its creators are function-local statics.
    return gFailures == 0 ? 0 : 1;
}
