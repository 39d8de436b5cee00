// HTTP dates (RFC 9110 §5.6.7), as a Retry-After header may carry instead of seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace celaest::core {

// Accepts the three forms a recipient must: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT",
// RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
// The weekday is not checked (senders get it wrong; the date is what matters).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31).
long long days_from_civil(long long y, unsigned m, unsigned d);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
