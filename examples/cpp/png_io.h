/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * PNG files through libpng: 8- and 16-bit gray, gray+alpha, RGB, RGBA and palette images in,
 * 8- or 16-bit RGB out. Writing is atomic (a temporary file in the same folder, then renamed)
 * and never replaces an existing file unless asked to.
 */
#ifndef HARMONY_EXAMPLES_PNG_IO_H
#define HARMONY_EXAMPLES_PNG_IO_H

#include "harmonizer.h"

#include <string>

namespace harmony
{

//! Decode a PNG: samples as stored (palette expanded to RGB, or RGBA where it has transparency;
//! gray below 8 bits scaled to 8). Throws Error for a missing, unreadable or corrupt file.
Image readPng(std::string const& path);

//! Throw Error unless `path` can be written: a .png name in an existing folder, and no file
//! there unless `overwrite`. Call it before the work that produces the image.
void checkPngOutput(std::string const& path, bool overwrite);

//! Write an RGB image atomically; an existing file is replaced only if `overwrite`.
void writePng(std::string const& path, Image const& image, bool overwrite);

} // namespace harmony

#endif // HARMONY_EXAMPLES_PNG_IO_H
