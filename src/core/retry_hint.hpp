// The delay a provider asks for before the next attempt, from response headers
// (PROVIDERS.md §4 "Back-off hints"). Gemini's body-borne RetryInfo is the Gemini codec's.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "core/chat.hpp"

namespace celaest::core {

// `retry-after-ms` first (the OpenAI SDK's order; may be fractional), then `retry-after`
// as delta-seconds or an HTTP date measured from `now` (a past date means 0).
std::optional<long> retry_after_ms(const std::vector<Header>& headers,
                                   std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// OpenAI/Groq: when x-ratelimit-remaining-{requests,tokens} is 0, the matching
// x-ratelimit-reset-* duration ("6m0s") is how long until there is room again; the larger
// of the exhausted ones. nullopt when nothing is exhausted or the headers are absent.
std::optional<long> rate_limit_reset_ms(const std::vector<Header>& headers);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
