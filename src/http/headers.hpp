// Response headers: lookup by name and assembly from libcurl's header lines.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "http/http_types.hpp"

namespace celaest::http {

// Case-insensitive (ASCII) lookup; when a name repeats, the last occurrence wins, as a
// later header overrides an earlier one for the single-valued headers we read
// (retry-after, request-id, content-type). The view points into `headers`.
std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name);

bool iequals(std::string_view a, std::string_view b) noexcept;

// Feeds one raw line from CURLOPT_HEADERFUNCTION into `headers`.
// A status line ("HTTP/...") starts a new response and drops what came before it, so
// interim responses (100 Continue, 103 Early Hints) and proxy CONNECT replies leave only
// the final response's headers. Obsolete folded lines are joined to the previous value.
void add_header_line(std::vector<Header>& headers, std::string_view line);

}  // namespace celaest::http
