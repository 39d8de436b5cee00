// Reading the JSON a model produced in JSON mode. Models asked by instruction alone
// (Anthropic) often wrap it in a markdown fence or a sentence; accept what is clearly JSON.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace celaest::core {

// Deeper nesting is not accepted as output: serializing the value (nlohmann's dump, on its
// way to jsonb) recurses once per level, and a reply of a hundred thousand '[' overflowed
// the backend's stack.
inline constexpr std::size_t kMaxJsonOutputDepth = 1000;

// In order: the whole text; the body of a ```/```json fence; the span from the first
// '{' or '[' to the last matching '}' or ']'. nullopt if none parses, or if the value is
// nested deeper than kMaxJsonOutputDepth.
std::optional<nlohmann::json> parse_json_output(std::string_view text);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
