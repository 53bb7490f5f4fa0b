/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "common/pluginLogging.h"

#include <atomic>
#include <cstdio>
#include <string>

namespace harmony
{
namespace plugin
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

char const* severityName(nvinfer1::ILogger::Severity severity) noexcept
{
    switch (severity)
    {
    case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case nvinfer1::ILogger::Severity::kERROR: return "ERROR";
    case nvinfer1::ILogger::Severity::kWARNING: return "WARNING";
    case nvinfer1::ILogger::Severity::kINFO: return "INFO";
    case nvinfer1::ILogger::Severity::kVERBOSE: return "VERBOSE";
    }
    return "UNKNOWN";
}
} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    gLoggerFinder.store(finder);
}

void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept
{
    try
    {
        nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
        nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(severity, message);
            return;
        }
        std::fprintf(stderr, "[harmony_plugins] %s: %s\n", severityName(severity), message);
    }
    catch (...)
    {
        // A logger that throws must not take the caller down.
    }
}

void logError(char const* where, char const* message) noexcept
{
    try
    {
        std::string const text = std::string(where) + ": " + message;
        logMessage(nvinfer1::ILogger::Severity::kERROR, text.c_str());
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, message);
    }
}

void logError(char const* plugin, char const* method, char const* message) noexcept
{
    try
    {
        std::string const where = std::string(plugin) + "::" + method;
        logError(where.c_str(), message);
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, message);
    }
}

} // namespace plugin
} // namespace harmony
