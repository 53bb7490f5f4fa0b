/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "harmonizer.h"

#include <algorithm>
#include <cmath>

namespace harmony
{

namespace
{

std::string sizeText(Image const& image)
{
    return std::to_string(image.height) + "x" + std::to_string(image.width) + " (HxW)";
}

} // namespace

void checkSameSize(Image const& composite, Image const& mask)
{
    if (composite.width != mask.width || composite.height != mask.height)
    {
        throw Error("the mask is " + sizeText(mask) + " but the image is " + sizeText(composite)
            + "; expected a mask of the same size as its image");
    }
}

GraphInputs graphInputs(Image const& composite, Image const& mask)
{
    checkSameSize(composite, mask);
    GraphInputs inputs{composite.height, composite.width, {}, {}};
    size_t const pixels = static_cast<size_t>(composite.width) * static_cast<size_t>(composite.height);
    inputs.image.resize(3 * pixels);
    inputs.mask.resize(pixels);
    float const imageScale = static_cast<float>(composite.maxValue());
    for (size_t p = 0; p < pixels; ++p)
    {
        for (size_t c = 0; c < 3; ++c)
        {
            size_t const source = composite.channels <= 2 ? 0 : c; // gray is replicated
            inputs.image[c * pixels + p]
                = static_cast<float>(composite.samples[p * composite.channels + source]) / imageScale;
        }
    }
    // Mask plane: alpha where the file has one that is not uniformly opaque, else the largest
    // colour channel.
    int32_t const channels = mask.channels;
    bool const hasAlpha = channels == 2 || channels == 4;
    bool useAlpha = false;
    for (size_t p = 0; hasAlpha && p < pixels && !useAlpha; ++p)
    {
        useAlpha = mask.samples[p * channels + channels - 1] != mask.maxValue();
    }
    std::vector<uint16_t> plane(pixels);
    uint16_t largest = 0;
    for (size_t p = 0; p < pixels; ++p)
    {
        uint16_t const* pixel = mask.samples.data() + p * channels;
        uint16_t value = pixel[0];
        if (useAlpha)
        {
            value = pixel[channels - 1];
        }
        else if (channels >= 3)
        {
            value = std::max({pixel[0], pixel[1], pixel[2]});
        }
        plane[p] = value;
        largest = std::max(largest, value);
    }
    float const maskScale = largest == 1 ? 1.F : static_cast<float>(mask.maxValue()); // 0/1 label map
    for (size_t p = 0; p < pixels; ++p)
    {
        inputs.mask[p] = static_cast<float>(plane[p]) / maskScale;
    }
    return inputs;
}

Image imageFromOutput(float const* output, int32_t height, int32_t width, int32_t bitDepth)
{
    Image image{width, height, 3, bitDepth, {}};
    size_t const pixels = static_cast<size_t>(width) * static_cast<size_t>(height);
    image.samples.resize(3 * pixels);
    double const levels = image.maxValue();
    for (size_t c = 0; c < 3; ++c)
    {
        for (size_t p = 0; p < pixels; ++p)
        {
            double const value = output[c * pixels + p];
            if (!std::isfinite(value))
            {
                throw Error("the model output contains NaN or infinite values");
            }
            // std::nearbyint rounds ties to even in the default rounding mode, like numpy.rint.
            image.samples[p * 3 + c] = static_cast<uint16_t>(std::nearbyint(std::clamp(value, 0.0, 1.0) * levels));
        }
    }
    return image;
}

} // namespace harmony
