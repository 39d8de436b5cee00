// How long to wait before retrying a failed provider call.
#pragma once

#include <optional>

namespace celaest::core {

// Exponential back-off with full jitter: a uniform pick in [0, min(cap, base * 2^(attempt-1))],
// where jitter01 in [0,1] is the caller's random draw (kept outside so this stays pure and
// testable). attempt is 1-based: the delay before the first retry uses attempt 1.
// A server-requested delay (Retry-After, RetryInfo) is honoured as given instead, but
// never longer than cap_ms: the caller decides elsewhere whether a long wait is worth it.
// Negative or NaN inputs are treated as 0; the result is in [0, max(cap_ms, 0)].
long backoff_delay_ms(int attempt, long base_ms, long cap_ms, std::optional<long> retry_after_ms, double jitter01);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
