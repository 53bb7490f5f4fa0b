/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Logging and error handling of the plugin library. TensorRT hands the library its logger
 * through setLoggerFinder() (see harmonyPlugins.cpp); until then messages go to stderr.
 * Plugin code throws PluginError; every noexcept entry point ends in HARMONY_PLUGIN_CATCH,
 * which logs the message, so no exception crosses the plugin boundary.
 */
#ifndef HARMONY_PLUGIN_LOGGING_H
#define HARMONY_PLUGIN_LOGGING_H

#include "NvInferRuntime.h"

#include <stdexcept>
#include <string>

namespace harmony
{
namespace plugin
{

//! A user-facing problem (bad attribute, unsupported shape): the message says what was expected,
//! what was received and how to fix it.
class PluginError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

//! Install the logger finder TensorRT passes to the library (nullptr: log to stderr).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Log `message` with `severity` to TensorRT's logger, or to stderr when there is none.
void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept;

//! Log an error of entry point `where`.
void logError(char const* where, char const* message) noexcept;

//! Log an error of entry point `plugin`::`method`: the same text as logError("plugin::method", message),
//! for shared code that knows the plugin's name only as a pointer (FusedOpPlugin).
void logError(char const* plugin, char const* method, char const* message) noexcept;

} // namespace plugin
} // namespace harmony

//! Catch clauses closing the try block of every noexcept entry point. The arguments name the entry
//! point as logError does: "Plugin::method", or the plugin and the method apart.
#define HARMONY_PLUGIN_CATCH(...)                                                                                      \
    catch (std::exception const& e)                                                                                    \
    {                                                                                                                  \
        ::harmony::plugin::logError(__VA_ARGS__, e.what());                                                            \
    }                                                                                                                  \
    catch (...)                                                                                                        \
    {                                                                                                                  \
        ::harmony::plugin::logError(__VA_ARGS__, "unknown exception");                                                 \
    }

//! Throw PluginError(message) unless `condition` holds.
#define HARMONY_PLUGIN_CHECK(condition, message)                                                                       \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(condition))                                                                                              \
        {                                                                                                              \
            throw ::harmony::plugin::PluginError(message);                                                             \
        }                                                                                                              \
    } while (0)

#endif // HARMONY_PLUGIN_LOGGING_H
