// Case-insensitive lookup in a header list (HTTP names are case-insensitive and providers
// differ: "Retry-After" vs "retry-after").
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/http_message.hpp"

namespace celaest::core {

// The value of the header with that name, trimmed of surrounding whitespace. When a name
// repeats, the last occurrence wins: a later header overrides an earlier one for the
// single-valued headers we read (retry-after, request-id, content-type). The view points
// into `headers`.
std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
