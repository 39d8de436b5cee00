// Refuses requests that libcurl would send in a surprising way.
//
// Header values come from stored configuration (API keys among them); a CR or LF in one
// would let it inject extra headers or a second request, so such a request never leaves.
#pragma once

#include <optional>
#include <string>

#include "http/http_types.hpp"

namespace celaest::http {

// Why the request cannot be sent, or nullopt when it can. The reason names the offending
// header by position, never by value.
std::optional<std::string> invalid_reason(const Request& request);

}  // namespace celaest::http

#include "core/cpp_only.hpp"
