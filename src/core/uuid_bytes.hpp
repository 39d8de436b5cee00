// A uuid's 16 bytes from its text form, for handing the server a uuid value without going
// through its input function on a hot path.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace celaest::core {

using UuidBytes = std::array<unsigned char, 16>;

// The canonical form (8-4-4-4-12 hex digits, either case) or 32 hex digits; nullopt otherwise.
std::optional<UuidBytes> parse_uuid(std::string_view text);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
