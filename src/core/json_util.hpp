// Lenient, non-throwing reads of provider JSON: unknown fields ignored, wrong types read
// as absent. Providers add fields and proxies mangle bodies; neither may crash a backend.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace celaest::core {

using Json = nlohmann::json;

// The parsed body, or nullopt if it is not one complete JSON value (truncated, HTML,
// empty). Leading blank lines (DeepSeek under load) are fine.
std::optional<Json> parse_json(std::string_view body);

// j[key] if j is an object holding key, else nullptr.
const Json* member(const Json& j, std::string_view key);

// j[key] as a string; "" when absent or not a string.
std::string string_at(const Json& j, std::string_view key);

// j[key] as a count (tokens): integers, floats (truncated) and numeric strings (proto int64
// fields are strings in JSON); 0 when absent, unreadable or negative, and at most kMaxCount,
// so that a provider's nonsense can neither bill a negative amount nor overflow a sum of
// counts (found by fuzzing: "completion_tokens": -9 was taken as it was).
inline constexpr long long kMaxCount = 1'000'000'000'000;  // 10^12 tokens
long long count_at(const Json& j, std::string_view key);

// Request bodies are serialized with invalid UTF-8 replaced (U+FFFD) rather than
// throwing: a database text value in a non-UTF-8 encoding must not abort the call.
std::string dump_body(const nlohmann::ordered_json& body);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
