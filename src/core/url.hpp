// Joining a configured base URL with a documented path. Bases come from settings and key
// metadata, typed by people: with or without a trailing slash.
#pragma once

#include <string>
#include <string_view>

namespace celaest::core {

// base + "/" + path with exactly one slash between them.
std::string join_url(std::string_view base, std::string_view path);

// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
std::string encode_path_segment(std::string_view segment);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
