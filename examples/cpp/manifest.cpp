/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "manifest.h"

#include "common/harmonyContract.h"
#include "harmonizer.h"

#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>

namespace harmony
{

namespace
{

//! A JSON value: null, bool, number (kept as text), string, array or object.
struct Json
{
    enum class Kind
    {
        kNull,
        kBool,
        kNumber,
        kString,
        kArray,
        kObject
    } kind{Kind::kNull};
    bool boolean{false};
    std::string text; //!< string value, or a number's text
    std::vector<Json> items;
    std::map<std::string, Json> members;

    Json const& at(std::string const& key) const
    {
        auto const found = members.find(key);
        if (kind != Kind::kObject || found == members.end())
        {
            throw Error("missing key '" + key + "'");
        }
        return found->second;
    }

    std::string const& string() const
    {
        if (kind != Kind::kString)
        {
            throw Error("expected a string");
        }
        return text;
    }
};

//! Recursive-descent reader of RFC 8259 JSON (escapes \uXXXX kept as ASCII where possible).
class JsonReader
{
public:
    explicit JsonReader(std::string const& text)
        : mText(text)
    {
    }

    Json document()
    {
        Json value = parseValue();
        skipSpace();
        if (mPos != mText.size())
        {
            fail("trailing characters");
        }
        return value;
    }

private:
    [[noreturn]] void fail(std::string const& what) const
    {
        throw Error("malformed JSON at offset " + std::to_string(mPos) + ": " + what);
    }

    void skipSpace()
    {
        while (mPos < mText.size() && std::string(" \t\r\n").find(mText[mPos]) != std::string::npos)
        {
            ++mPos;
        }
    }

    bool consume(std::string const& token)
    {
        if (mText.compare(mPos, token.size(), token) == 0)
        {
            mPos += token.size();
            return true;
        }
        return false;
    }

    Json parseValue()
    {
        skipSpace();
        if (mPos >= mText.size())
        {
            fail("unexpected end");
        }
        Json value;
        char const c = mText[mPos];
        if (c == '{')
        {
            value.kind = Json::Kind::kObject;
            ++mPos;
            skipSpace();
            if (consume("}"))
            {
                return value;
            }
            do
            {
                skipSpace();
                std::string key = parseString();
                skipSpace();
                if (!consume(":"))
                {
                    fail("expected ':'");
                }
                value.members[key] = parseValue();
                skipSpace();
            } while (consume(","));
            if (!consume("}"))
            {
                fail("expected '}'");
            }
        }
        else if (c == '[')
        {
            value.kind = Json::Kind::kArray;
            ++mPos;
            skipSpace();
            if (consume("]"))
            {
                return value;
            }
            do
            {
                value.items.push_back(parseValue());
                skipSpace();
            } while (consume(","));
            if (!consume("]"))
            {
                fail("expected ']'");
            }
        }
        else if (c == '"')
        {
            value.kind = Json::Kind::kString;
            value.text = parseString();
        }
        else if (consume("true"))
        {
            value.kind = Json::Kind::kBool;
            value.boolean = true;
        }
        else if (consume("false"))
        {
            value.kind = Json::Kind::kBool;
        }
        else if (consume("null"))
        {
            value.kind = Json::Kind::kNull;
        }
        else
        {
            size_t const start = mPos;
            while (mPos < mText.size() && std::string("+-0123456789.eE").find(mText[mPos]) != std::string::npos)
            {
                ++mPos;
            }
            if (mPos == start)
            {
                fail("unexpected character");
            }
            value.kind = Json::Kind::kNumber;
            value.text = mText.substr(start, mPos - start);
        }
        return value;
    }

    std::string parseString()
    {
        if (!consume("\""))
        {
            fail("expected a string");
        }
        std::string out;
        while (mPos < mText.size() && mText[mPos] != '"')
        {
            char c = mText[mPos++];
            if (c == '\\' && mPos < mText.size())
            {
                char const escaped = mText[mPos++];
                std::string const from = "\"\\/bfnrt";
                std::string const to = "\"\\/\b\f\n\r\t";
                if (escaped == 'u' && mPos + 4 <= mText.size())
                {
                    long const code = std::stol(mText.substr(mPos, 4), nullptr, 16);
                    mPos += 4;
                    c = code < 0x80 ? static_cast<char>(code) : '?';
                }
                else if (from.find(escaped) != std::string::npos)
                {
                    c = to[from.find(escaped)];
                }
                else
                {
                    fail("bad escape");
                }
            }
            out.push_back(c);
        }
        if (!consume("\""))
        {
            fail("unterminated string");
        }
        return out;
    }

    std::string const& mText;
    size_t mPos{0};
};

} // namespace

std::vector<char> readFile(std::string const& path)
{
    std::ifstream file(path, std::ios::binary);
    if (!file)
    {
        throw Error("cannot read " + path);
    }
    return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

std::string sha256Hex(std::vector<char> const& bytes)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    {
        throw Error("SHA-256 failed");
    }
    std::string hex;
    char buffer[3];
    for (unsigned int i = 0; i < length; ++i)
    {
        std::snprintf(buffer, sizeof(buffer), "%02x", digest[i]);
        hex += buffer;
    }
    return hex;
}

EngineManifest readManifest(std::string const& enginePath)
{
    std::string const path = enginePath + contract::kEngineManifestSuffix;
    std::vector<char> const bytes = readFile(path);
    try
    {
        std::string const text(bytes.begin(), bytes.end());
        Json const root = JsonReader(text).document();
        if (root.at("schema").string() != contract::kEngineManifestSchema)
        {
            throw Error("schema '" + root.at("schema").string() + "', expected '"
                + contract::kEngineManifestSchema + "'");
        }
        EngineManifest manifest;
        manifest.runtime = root.at("runtime").at("name").string();
        manifest.runtimeVersion = root.at("runtime").at("version").string();
        for (Json const& item : root.at("compute_capabilities").items)
        {
            manifest.computeCapabilities.push_back(item.string());
        }
        manifest.engineSha256 = root.at("engine_sha256").string();
        Json const& plugins = root.at("plugins");
        manifest.hasPlugins = plugins.kind == Json::Kind::kObject;
        if (manifest.hasPlugins)
        {
            manifest.pluginsEmbedded = plugins.at("embedded").boolean;
            manifest.pluginSha256 = plugins.at("library_sha256").string();
            manifest.pluginPath = plugins.at("library_path").string();
        }
        return manifest;
    }
    catch (Error const& e)
    {
        throw Error("the engine manifest " + path + " is unusable: " + e.what() + "; rebuild the engine with harmony build");
    }
}

} // namespace harmony
