/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "png_io.h"

#include <png.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace harmony
{

namespace
{

struct FileCloser
{
    void operator()(std::FILE* file) const
    {
        std::fclose(file);
    }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void pngError(png_structp png, png_const_charp message)
{
    // Carry libpng's message out through its longjmp buffer.
    auto* text = static_cast<std::string*>(png_get_error_ptr(png));
    *text = message;
    png_longjmp(png, 1);
}

void pngWarning(png_structp, png_const_charp)
{
}

bool isBigEndianHost()
{
    uint16_t const probe = 1;
    unsigned char first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 0;
}

std::string folderOf(std::string const& path)
{
    size_t const slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

bool exists(std::string const& path)
{
    struct stat info{};
    return ::stat(path.c_str(), &info) == 0;
}

//! Encode the rows; false where libpng failed (its message went to the error pointer).
bool encodeRgb(png_structp png, png_infop info, std::FILE* file, Image const& image,
    std::vector<unsigned char> const& bytes, size_t rowBytes)
{
    if (setjmp(png_jmpbuf(png)) != 0)
    {
        return false;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height),
        image.bitDepth, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (image.bitDepth == 16 && !isBigEndianHost())
    {
        png_set_swap(png);
    }
    for (int32_t y = 0; y < image.height; ++y)
    {
        png_write_row(png, bytes.data() + static_cast<size_t>(y) * rowBytes);
    }
    png_write_end(png, nullptr);
    return std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
}

} // namespace

Image readPng(std::string const& path)
{
    if (!exists(path))
    {
        throw Error("image file " + path + " does not exist");
    }
    File file(std::fopen(path.c_str(), "rb"));
    if (!file)
    {
        throw Error("cannot read " + path + ": " + std::strerror(errno));
    }
    unsigned char signature[8]{};
    if (std::fread(signature, 1, sizeof(signature), file.get()) != sizeof(signature)
        || png_sig_cmp(signature, 0, sizeof(signature)) != 0)
    {
        throw Error("cannot decode " + path + ": not a PNG file");
    }
    std::string message;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &message, pngError, pngWarning);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (info == nullptr)
    {
        png_destroy_read_struct(&png, nullptr, nullptr);
        throw Error("cannot decode " + path + ": out of memory");
    }
    // Everything the decoder fills lives before setjmp: libpng reports errors by longjmp.
    Image image;
    std::vector<png_bytep> rows;
    std::vector<unsigned char> bytes;
    if (setjmp(png_jmpbuf(png)) != 0)
    {
        png_destroy_read_struct(&png, &info, nullptr);
        throw Error("cannot decode " + path + ": corrupt PNG (" + message + ")");
    }
    png_init_io(png, file.get());
    png_set_sig_bytes(png, sizeof(signature));
    png_read_info(png, info);
    int const colorType = png_get_color_type(png, info);
    if (colorType == PNG_COLOR_TYPE_PALETTE)
    {
        png_set_palette_to_rgb(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS) != 0)
        {
            png_set_tRNS_to_alpha(png);
        }
    }
    if (colorType == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
    {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (png_get_bit_depth(png, info) == 16 && !isBigEndianHost())
    {
        png_set_swap(png); // PNG stores 16-bit samples big-endian
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    image.width = static_cast<int32_t>(png_get_image_width(png, info));
    image.height = static_cast<int32_t>(png_get_image_height(png, info));
    image.channels = png_get_channels(png, info);
    image.bitDepth = png_get_bit_depth(png, info);
    size_t const rowBytes = png_get_rowbytes(png, info);
    bytes.resize(rowBytes * static_cast<size_t>(image.height));
    rows.resize(static_cast<size_t>(image.height));
    for (size_t y = 0; y < rows.size(); ++y)
    {
        rows[y] = bytes.data() + y * rowBytes;
    }
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);

    size_t const count = static_cast<size_t>(image.width) * image.height * image.channels;
    image.samples.resize(count);
    for (size_t i = 0; i < count; ++i)
    {
        if (image.bitDepth == 16)
        {
            uint16_t value = 0;
            std::memcpy(&value, bytes.data() + 2 * i, 2);
            image.samples[i] = value;
        }
        else
        {
            image.samples[i] = bytes[i];
        }
    }
    return image;
}

void checkPngOutput(std::string const& path, bool overwrite)
{
    if (path.size() < 4 || path.compare(path.size() - 4, 4, ".png") != 0)
    {
        throw Error("cannot write " + path + ": expected a .png file name");
    }
    if (exists(path) && !overwrite)
    {
        throw Error(path + " exists; pass --force to replace it");
    }
    std::string const folder = folderOf(path);
    if (::access(folder.c_str(), W_OK) != 0)
    {
        throw Error("cannot write " + path + ": the folder " + folder + " is missing or not writable");
    }
}

void writePng(std::string const& path, Image const& image, bool overwrite)
{
    checkPngOutput(path, overwrite);
    std::string const temporary = path + ".tmp-" + std::to_string(::getpid());
    std::string message;
    bool written = false;
    {
        File file(std::fopen(temporary.c_str(), "wb"));
        if (!file)
        {
            throw Error("cannot write " + temporary + ": " + std::strerror(errno));
        }
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &message, pngError, pngWarning);
        png_infop info = png ? png_create_info_struct(png) : nullptr;
        size_t const bytesPerSample = image.bitDepth == 16 ? 2 : 1;
        size_t const rowBytes = static_cast<size_t>(image.width) * 3 * bytesPerSample;
        std::vector<unsigned char> bytes(rowBytes * static_cast<size_t>(image.height));
        for (size_t i = 0; i < image.samples.size(); ++i)
        {
            if (bytesPerSample == 2)
            {
                std::memcpy(bytes.data() + 2 * i, &image.samples[i], 2);
            }
            else
            {
                bytes[i] = static_cast<unsigned char>(image.samples[i]);
            }
        }
        written = info != nullptr && encodeRgb(png, info, file.get(), image, bytes, rowBytes);
        png_destroy_write_struct(&png, &info);
    }
    // Without --force, link() refuses to replace a file that appeared meanwhile.
    bool const placed = written
        && (overwrite ? std::rename(temporary.c_str(), path.c_str()) == 0 : ::link(temporary.c_str(), path.c_str()) == 0);
    int const error = errno;
    std::remove(temporary.c_str());
    if (!placed)
    {
        throw Error("cannot write " + path + ": " + (message.empty() ? std::strerror(error) : message));
    }
}

} // namespace harmony
