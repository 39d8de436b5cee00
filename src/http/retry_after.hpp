// The delay a response asks for before the next attempt (PROVIDERS.md §4, "Back-off hints").
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "http/http_types.hpp"

namespace celaest::http {

// Reads, in the order the official SDKs do: `retry-after-ms` (OpenAI; milliseconds, may be
// fractional), then `retry-after` as delta-seconds (may be fractional) or as an HTTP-date
// (measured from `now`; a date in the past means "now", i.e. zero).
// nullopt when neither header is present or parseable. Gemini's RetryInfo lives in the body
// and is the codec's business. Whether to honour the delay (a cap, billing 429s) is the
// retry policy's.
std::optional<std::chrono::milliseconds> retry_after(
    const std::vector<Header>& headers, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace celaest::http
