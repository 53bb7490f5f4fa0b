/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * What both example programs do around their Harmonizer, like harmony-run: parse
 *   PROGRAM --model MODEL --image C.png --mask M.png -o OUT.png [--force] [OPTIONS]
 * check the output before any work, read the PNGs, harmonize, write atomically. Every failure
 * prints one line "error: ..." and exits 1 (2 for a usage error), leaving no output file.
 */
#ifndef HARMONY_EXAMPLES_CLI_H
#define HARMONY_EXAMPLES_CLI_H

#include "harmonizer.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace harmony
{

//! The parsed command line: the common options, and the program's own `--name value` options.
struct Arguments
{
    std::string model;
    std::string image;
    std::string mask;
    std::string output;
    bool force{false};
    std::map<std::string, std::string> options;
};

//! Make the program's Harmonizer from the arguments.
using HarmonizerFactory = std::function<std::unique_ptr<Harmonizer>(Arguments const&)>;

//! Run the program; returns its exit status. `options` lists the program's own options with
//! their defaults; `usage` is the program's one-line synopsis.
int runHarmonize(int argc, char** argv, std::string const& usage, std::map<std::string, std::string> options,
    HarmonizerFactory const& makeHarmonizer);

} // namespace harmony

#endif // HARMONY_EXAMPLES_CLI_H
