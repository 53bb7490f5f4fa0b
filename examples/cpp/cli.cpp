/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include "png_io.h"

#include <chrono>
#include <cstdio>
#include <exception>

namespace harmony
{

namespace
{

struct UsageError : Error
{
    using Error::Error;
};

Arguments parse(int argc, char** argv, std::map<std::string, std::string> options)
{
    Arguments arguments;
    arguments.options = std::move(options);
    std::map<std::string, std::string*> const paths{{"--model", &arguments.model}, {"--image", &arguments.image},
        {"--mask", &arguments.mask}, {"-o", &arguments.output}, {"--output", &arguments.output}};
    for (int i = 1; i < argc; ++i)
    {
        std::string const flag = argv[i];
        if (flag == "--force")
        {
            arguments.force = true;
            continue;
        }
        bool const known = paths.count(flag) > 0 || arguments.options.count(flag.substr(2)) > 0;
        if (!known || flag.rfind("-", 0) != 0)
        {
            throw UsageError("unknown argument '" + flag + "'");
        }
        if (i + 1 >= argc)
        {
            throw UsageError(flag + " needs a value");
        }
        std::string const value = argv[++i];
        if (paths.count(flag) > 0)
        {
            *paths.at(flag) = value;
        }
        else
        {
            arguments.options[flag.substr(2)] = value;
        }
    }
    for (auto const& [flag, value] : paths)
    {
        if (value->empty() && flag != "--output")
        {
            throw UsageError(flag + " is required");
        }
    }
    return arguments;
}

} // namespace

int runHarmonize(int argc, char** argv, std::string const& usage, std::map<std::string, std::string> options,
    HarmonizerFactory const& makeHarmonizer)
{
    Arguments arguments;
    try
    {
        arguments = parse(argc, argv, std::move(options));
    }
    catch (UsageError const& e)
    {
        std::fprintf(stderr, "usage: %s\nerror: %s\n", usage.c_str(), e.what());
        return 2;
    }
    try
    {
        checkPngOutput(arguments.output, arguments.force);
        Image const composite = readPng(arguments.image);
        Image const mask = readPng(arguments.mask);
        checkSameSize(composite, mask);
        std::unique_ptr<Harmonizer> harmonizer = makeHarmonizer(arguments);
        auto const start = std::chrono::steady_clock::now();
        Image const result = harmonizer->harmonize(composite, mask);
        double const ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        writePng(arguments.output, result, arguments.force);
        std::printf("wrote %s (%dx%d, %d-bit) in %.0f ms\n", arguments.output.c_str(), result.width, result.height,
            result.bitDepth, ms);
        return 0;
    }
    catch (std::exception const& e)
    {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

} // namespace harmony
