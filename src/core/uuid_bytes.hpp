// A uuid's 16 bytes from its text form, for handing the server a uuid value without going
// through its input function on a hot path.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace celaest::core {

using UuidBytes = std::array<unsigned char, 16>;

// The canonical form (8-4-4-4-12 hex digits, either case) or 32 hex digits; nullopt otherwise.
std::optional<UuidBytes> parse_uuid(std::string_view text);

// Every form PostgreSQL's uuid input accepts (32 hex digits, a '-' optionally after any group
// of four, the whole optionally in braces), as canonical lower-case text; nullopt otherwise.
// For a setting a user typed (celaest.user_id), checked without calling the server.
std::optional<std::string> canonical_uuid_text(std::string_view text);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
