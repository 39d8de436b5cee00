// Response headers as libcurl delivers them, one raw line at a time. Look them up with
// core::find_header (core/headers.hpp): one rule for the whole extension.
#pragma once

#include <string_view>
#include <vector>

#include "http/http_types.hpp"

namespace celaest::http {

// Feeds one raw line from CURLOPT_HEADERFUNCTION into `headers`.
// A status line ("HTTP/...") starts a new response and drops what came before it, so
// interim responses (100 Continue, 103 Early Hints) and proxy CONNECT replies leave only
// the final response's headers. Obsolete folded lines are joined to the previous value.
void add_header_line(std::vector<Header>& headers, std::string_view line);

}  // namespace celaest::http

#include "core/cpp_only.hpp"
