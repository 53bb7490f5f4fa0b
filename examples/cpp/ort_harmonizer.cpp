/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "ort_harmonizer.h"

#include "common/harmonyContract.h"

#include <onnxruntime_c_api.h>

#include <array>

namespace harmony
{

namespace
{

//! Throw the message of a failed ONNX Runtime call (`what` says which step).
void check(OrtApi const* api, OrtStatus* status, std::string const& what)
{
    if (status != nullptr)
    {
        std::string const message = api->GetErrorMessage(status);
        api->ReleaseStatus(status);
        throw Error(what + ": " + message);
    }
}

} // namespace

OrtHarmonizer::OrtHarmonizer(std::string const& modelPath, std::string const& customOpLibrary, int32_t threads)
{
    OrtApiBase const* base = OrtGetApiBase();
    mApi = base->GetApi(ORT_API_VERSION);
    if (mApi == nullptr)
    {
        throw Error(std::string("this ONNX Runtime (") + base->GetVersionString()
            + ") is older than the headers harmonize_ort was built with (C API "
            + std::to_string(ORT_API_VERSION) + ")");
    }
    OrtSessionOptions* options = nullptr;
    try
    {
        // Failures reach the caller as statuses; ORT's own log would print them a second time.
        check(mApi, mApi->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "harmony", &mEnv), "ONNX Runtime");
        check(mApi, mApi->CreateSessionOptions(&options), "ONNX Runtime");
        check(mApi, mApi->SetIntraOpNumThreads(options, threads), "ONNX Runtime");
        if (!customOpLibrary.empty())
        {
            check(mApi, mApi->RegisterCustomOpsLibrary_V2(options, customOpLibrary.c_str()),
                "cannot load the custom-op library " + customOpLibrary);
        }
        check(mApi, mApi->CreateSession(mEnv, modelPath.c_str(), options, &mSession),
            "ONNX Runtime cannot load " + modelPath);
        mApi->ReleaseSessionOptions(options);
        options = nullptr;
        check(mApi, mApi->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mMemory), "ONNX Runtime");
    }
    catch (...)
    {
        if (options != nullptr)
        {
            mApi->ReleaseSessionOptions(options);
        }
        release();
        throw;
    }
}

OrtHarmonizer::~OrtHarmonizer()
{
    release();
}

void OrtHarmonizer::release() noexcept
{
    if (mMemory != nullptr)
    {
        mApi->ReleaseMemoryInfo(mMemory);
        mMemory = nullptr;
    }
    if (mSession != nullptr)
    {
        mApi->ReleaseSession(mSession);
        mSession = nullptr;
    }
    if (mEnv != nullptr)
    {
        mApi->ReleaseEnv(mEnv);
        mEnv = nullptr;
    }
}

Image OrtHarmonizer::harmonize(Image const& composite, Image const& mask)
{
    GraphInputs inputs = graphInputs(composite, mask);
    int64_t const h = inputs.height;
    int64_t const w = inputs.width;
    std::array<int64_t, 4> const imageShape{1, 3, h, w};
    std::array<int64_t, 4> const maskShape{1, 1, h, w};
    std::array<OrtValue*, 2> values{nullptr, nullptr};
    OrtValue* output = nullptr;
    auto release = [&]() {
        for (OrtValue*& value : values)
        {
            mApi->ReleaseValue(value);
            value = nullptr;
        }
        mApi->ReleaseValue(output);
        output = nullptr;
    };
    try
    {
        check(mApi,
            mApi->CreateTensorWithDataAsOrtValue(mMemory, inputs.image.data(), inputs.image.size() * sizeof(float),
                imageShape.data(), imageShape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &values[0]),
            "ONNX Runtime");
        check(mApi,
            mApi->CreateTensorWithDataAsOrtValue(mMemory, inputs.mask.data(), inputs.mask.size() * sizeof(float),
                maskShape.data(), maskShape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &values[1]),
            "ONNX Runtime");
        char const* outputName = contract::kGraphOutput;
        check(mApi,
            mApi->Run(mSession, nullptr, contract::kGraphInputs, values.data(), values.size(), &outputName, 1, &output),
            "ONNX Runtime failed to run the graph");
        OrtTensorTypeAndShapeInfo* info = nullptr;
        check(mApi, mApi->GetTensorTypeAndShape(output, &info), "ONNX Runtime");
        ONNXTensorElementDataType type{};
        OrtStatus* status = mApi->GetTensorElementType(info, &type);
        mApi->ReleaseTensorTypeAndShapeInfo(info);
        check(mApi, status, "ONNX Runtime");
        if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
        {
            throw Error("the graph's output is not float32; export it with float32 inputs and outputs");
        }
        float* data = nullptr;
        check(mApi, mApi->GetTensorMutableData(output, reinterpret_cast<void**>(&data)), "ONNX Runtime");
        Image result = imageFromOutput(data, inputs.height, inputs.width, composite.bitDepth);
        release();
        return result;
    }
    catch (...)
    {
        release();
        throw;
    }
}

} // namespace harmony
