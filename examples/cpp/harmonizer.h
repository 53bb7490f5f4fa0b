/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The C++ embedding API of harmony-deploy's examples: construct a Harmonizer once from a model
 * file, then call harmonize(composite, mask) on 8-bit or 16-bit RGB buffers.
 *
 *   auto harmonizer = harmony::OrtHarmonizer("hdnet.trt.fp32.onnx", "libharmony_ort_ops.so");
 *   harmony::Image out = harmonizer.harmonize(composite, mask);
 *
 * Thread safety: constructing is not; harmonize() is safe to call from several threads at once
 * on one Harmonizer (OrtHarmonizer runs concurrently, TrtHarmonizer serializes the calls on its
 * one execution context). Errors are thrown as harmony::Error with a one-line message.
 */
#ifndef HARMONY_EXAMPLES_HARMONIZER_H
#define HARMONY_EXAMPLES_HARMONIZER_H

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace harmony
{

//! A failure with a message for the user (one line).
struct Error : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

//! Interleaved pixels, row-major: `channels` samples per pixel, each in [0, 2^bitDepth - 1].
struct Image
{
    int32_t width{0};
    int32_t height{0};
    int32_t channels{0}; //!< 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int32_t bitDepth{8}; //!< 8 or 16
    std::vector<uint16_t> samples;

    uint16_t maxValue() const
    {
        return static_cast<uint16_t>((1U << bitDepth) - 1U);
    }
};

//! Graph inputs in float32 NCHW, batch 1: image [1,3,H,W] and mask [1,1,H,W] in [0,1].
struct GraphInputs
{
    int32_t height{0};
    int32_t width{0};
    std::vector<float> image;
    std::vector<float> mask;
};

//! Throw Error unless the mask has the composite's size.
void checkSameSize(Image const& composite, Image const& mask);

//! The graph inputs of a composite and its mask, read as harmony-run reads them: RGB (gray
//! replicated, alpha dropped) / (2^bitDepth - 1); the mask is the alpha channel where it is not
//! uniformly opaque, else the largest colour channel; a 0/1 label map reads 1 as foreground.
//! Throws Error when the sizes differ.
GraphInputs graphInputs(Image const& composite, Image const& mask);

//! A [1,3,H,W] float output as an RGB image of `bitDepth` bits: clamped to [0,1], rounded to
//! the nearest level (ties to even). Throws Error on NaN or infinite values.
Image imageFromOutput(float const* output, int32_t height, int32_t width, int32_t bitDepth);

//! What every backend of the examples offers.
class Harmonizer
{
public:
    virtual ~Harmonizer() = default;

    //! The harmonized composite, RGB with the composite's bit depth.
    virtual Image harmonize(Image const& composite, Image const& mask) = 0;
};

} // namespace harmony

#endif // HARMONY_EXAMPLES_HARMONIZER_H
