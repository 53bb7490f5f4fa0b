/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs the plugin launchers (launchCascadedLut3D, launchKnnTopkFusion) on host threads through
 * cudaEmulation.h and compares every output with libharmony_cpu_ops, like the harness does on a
 * GPU. Inputs, outputs and the KNN workspace are exact-size heap buffers, so an AddressSanitizer
 * build reports any read or write past a tile edge; the workspace starts as garbage.
 *   kernelEmulation [quick]     quick: a few small cases (for the ThreadSanitizer build)
 * Prints one PASS/FAIL line per case; exits 0 when nothing failed.
 */
#include "cudaEmulation.h"

#include "cascadedLut3DPlugin/cascadedLut3DKernel.h"
#include "common/harmonyContract.h"
#include "cpu/harmonyCpuOps.h"
#include "knnTopkFusionPlugin/knnTopkFusionKernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

int32_t gFailures{0};

void report(bool ok, std::string const& what)
{
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
    gFailures += ok ? 0 : 1;
}

std::vector<float> uniform(size_t n, float lo, float hi, std::mt19937& rng)
{
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> values(n);
    for (float& v : values)
    {
        v = dist(rng);
    }
    return values;
}

template <typename T>
std::vector<T> convert(std::vector<float> const& values)
{
    std::vector<T> out(values.size());
    std::transform(values.begin(), values.end(), out.begin(), [](float v) { return static_cast<T>(v); });
    return out;
}

template <typename T>
std::vector<float> toFloats(std::vector<T> const& values)
{
    std::vector<float> out(values.size());
    std::transform(values.begin(), values.end(), out.begin(), [](T v) { return static_cast<float>(v); });
    return out;
}

//! Largest |a - b|; equal values and NaN on both sides match, NaN on one side is infinite.
float maxAbsDiff(std::vector<float> const& a, std::vector<float> const& b)
{
    float diff = a.size() == b.size() ? 0.F : INFINITY;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    {
        bool const same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]));
        float const d = same ? 0.F : std::fabs(a[i] - b[i]);
        diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    }
    return diff;
}

template <typename T>
char const* typeName()
{
    return sizeof(T) == 2 ? "FP16" : "FP32";
}

template <typename T>
void lutCase(int32_t b, int32_t height, int32_t width, int32_t mh, int32_t mw)
{
    using namespace harmony;
    std::mt19937 rng(static_cast<uint32_t>(7 + height * 31 + width + mh));
    size_t const pixels = static_cast<size_t>(height) * width;
    size_t const plane = static_cast<size_t>(mh) * mw;
    std::vector<float> image = uniform(b * 3 * pixels, -0.1F, 1.1F, rng);
    std::vector<float> mask = uniform(b * pixels, 0.F, 1.F, rng);
    std::vector<float> knots(b * 3 * contract::kLutKnots * plane);
    for (size_t bc = 0; bc < static_cast<size_t>(b) * 3; ++bc)
    {
        for (size_t p = 0; p < plane; ++p)
        {
            std::vector<float> const steps = uniform(contract::kLutKnots - 1, 0.1F, 1.F, rng);
            float total = 0.F;
            for (float s : steps)
            {
                total += s;
            }
            float acc = 0.F;
            for (int32_t t = 1; t < contract::kLutKnots; ++t)
            {
                acc += steps[t - 1] / total;
                knots[(bc * contract::kLutKnots + t) * plane + p] = acc;
            }
        }
    }
    std::vector<float> curve = uniform(b * 3 * contract::kLutCurvePoints * plane, -0.2F, 1.2F, rng);
    std::vector<T> const deviceImage = convert<T>(image);
    std::vector<T> const deviceMask = convert<T>(mask);
    std::vector<T> const deviceKnots = convert<T>(knots);
    std::vector<T> const deviceCurve = convert<T>(curve);
    std::vector<float> expected(image.size());
    int32_t const rc = harmonyCascadedLut3DFloat(toFloats(deviceImage).data(), toFloats(deviceMask).data(),
        toFloats(deviceKnots).data(), toFloats(deviceCurve).data(), expected.data(), b, height, width, mh, mw);
    std::vector<T> out(image.size());
    cudaError_t const status = launchCascadedLut3D<T>(deviceImage.data(), deviceMask.data(), deviceKnots.data(),
        deviceCurve.data(), out.data(), b, height, width, mh, mw, nullptr);
    float const diff = maxAbsDiff(toFloats(out), expected);
    report(rc == 0 && status == cudaSuccess && diff <= (sizeof(T) == 2 ? 1e-3F : 1e-5F),
        std::string(typeName<T>()) + " " + harmony::contract::kCascadedLutName + " B=" + std::to_string(b) + " "
            + std::to_string(height) + "x" + std::to_string(width) + " map " + std::to_string(mh) + "x"
            + std::to_string(mw) + " (max abs diff " + std::to_string(diff) + ")");
}

enum class Mask
{
    kBinary, // batch 1 has a background top half: whole query tiles are skipped
    kSoft,
    kZeros, // every query row all zero
    kOnes,  // every support column zero: every dot product an exact 0
};

//! integer: features in {-1, 0, 1, 2}, exact dot products, exact ties across support tiles.
//! nonFinite: batch 1 holds a NaN and an infinity.
template <typename T>
void knnCase(int32_t k, int32_t b, int32_t c, int32_t height, int32_t width, Mask maskKind, bool integer = false,
    bool nonFinite = false)
{
    using namespace harmony;
    int32_t const n = height * width;
    std::mt19937 rng(static_cast<uint32_t>(11 + k + c * 7 + n));
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
        bool const background = i >= static_cast<size_t>(n) && i < static_cast<size_t>(n + n / 2);
        switch (maskKind)
        {
        case Mask::kBinary: mask[i] = background ? 0.F : static_cast<float>(rng() % 2); break;
        case Mask::kSoft: mask[i] = uniform(1, 0.F, 1.F, rng)[0]; break;
        case Mask::kZeros: mask[i] = 0.F; break;
        case Mask::kOnes: mask[i] = 1.F; break;
        }
    }
    if (nonFinite && b > 1)
    {
        size_t const batch1 = static_cast<size_t>(c) * n;
        features[batch1 + static_cast<size_t>(n / 3)] = NAN;
        features[batch1 + static_cast<size_t>(c - 1) * n + static_cast<size_t>(n - 1)] = INFINITY;
    }
    std::vector<T> const deviceFeatures = convert<T>(features);
    std::vector<T> const deviceMask = convert<T>(mask);
    std::vector<float> expected(features.size());
    int32_t const rc = harmonyKnnTopkFusionFloat(
        toFloats(deviceFeatures).data(), toFloats(deviceMask).data(), expected.data(), b, c, n, k);
    size_t const workspaceBytes = knnTopkFusionWorkspaceSize(b, n, k);
    std::vector<uint8_t> workspace(workspaceBytes, 0xCD); // garbage, like a reused TensorRT workspace
    std::vector<T> out(features.size());
    cudaError_t const status = launchKnnTopkFusion<T>(
        deviceFeatures.data(), deviceMask.data(), out.data(), workspace.data(), b, c, n, k, nullptr);
    float const diff = maxAbsDiff(toFloats(out), expected);
    char const* const maskNames[]{"binary", "soft", "all-zero", "all-one"};
    report(rc == 0 && status == cudaSuccess && diff <= (sizeof(T) == 2 ? 2e-3F : 1e-5F),
        std::string(typeName<T>()) + " " + harmony::contract::kKnnTopkFusionName + " k=" + std::to_string(k) + " B="
            + std::to_string(b) + " C=" + std::to_string(c) + " " + std::to_string(height) + "x" + std::to_string(width)
            + " " + maskNames[static_cast<int32_t>(maskKind)] + " mask" + (integer ? ", integer features" : "")
            + (nonFinite ? ", NaN/inf features" : "") + " (max abs diff " + std::to_string(diff) + ")");
}

template <typename T>
void quickCases()
{
    lutCase<T>(1, 5, 7, 3, 4);
    knnCase<T>(4, 2, 20, 7, 9, Mask::kBinary);
    knnCase<T>(2, 2, 3, 9, 9, Mask::kSoft, true, true);
}

template <typename T>
void fullCases()
{
    lutCase<T>(2, 37, 53, 7, 5);
    lutCase<T>(1, 1, 1, 3, 3);   // H == W == 1
    lutCase<T>(1, 4, 6, 1, 1);   // 1 x 1 maps
    lutCase<T>(2, 5, 3, 9, 11);  // maps larger than the image
    lutCase<T>(1, 1, 257, 2, 1); // one row, partial block, map w == 1
    for (int32_t k : {1, 4, 32})
    {
        knnCase<T>(k, 2, 20, 13, 11, Mask::kBinary); // 143 positions: partial query and support tiles
        knnCase<T>(k, 2, 5, 13, 11, Mask::kSoft);
        knnCase<T>(k, 2, 5, 13, 11, Mask::kZeros);
        knnCase<T>(k, 1, 5, 13, 11, Mask::kOnes);
        knnCase<T>(k, 2, 3, 21, 13, Mask::kBinary, true); // ties across 5 support tiles
    }
    knnCase<T>(8, 1, 33, 24, 24, Mask::kBinary); // 576 positions, 3 channel tiles
    knnCase<T>(1, 1, 17, 1, 1, Mask::kSoft);     // one position
    knnCase<T>(2, 1, 3, 1, 2, Mask::kBinary);    // k == N
    knnCase<T>(1, 2, 6, 13, 11, Mask::kSoft, false, true);
    knnCase<T>(4, 2, 6, 13, 11, Mask::kBinary, false, true);
}

} // namespace

int main(int argc, char** argv)
{
    bool const quick = argc > 1 && std::strcmp(argv[1], "quick") == 0;
    if (quick)
    {
        quickCases<float>();
        quickCases<__half>();
    }
    else
    {
        fullCases<float>();
        fullCases<__half>();
    }
    std::printf("%ld blocks emulated\n%s: %d failure(s)\n", harmony_emu::gBlocks.load(),
        gFailures == 0 ? "OK" : "FAILED", gFailures);
    return gFailures == 0 ? 0 : 1;
}
