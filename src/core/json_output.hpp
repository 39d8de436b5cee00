// Reading the JSON a model produced in JSON mode. Models asked by instruction alone
// (Anthropic) often wrap it in a markdown fence or a sentence; accept what is clearly JSON.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace celaest::core {

// In order: the whole text; the body of a ```/```json fence; the span from the first
// '{' or '[' to the last matching '}' or ']'. nullopt if none parses.
std::optional<nlohmann::json> parse_json_output(std::string_view text);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
