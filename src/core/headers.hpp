// Case-insensitive lookup in a received header list (HTTP names are case-insensitive and
// providers differ: "Retry-After" vs "retry-after").
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/chat.hpp"

namespace celaest::core {

// The first header with that name, its value trimmed of surrounding whitespace.
std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
