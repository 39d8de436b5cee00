// Go-style durations as providers print them in rate-limit hints: Gemini RetryInfo
// retryDelay ("37s", "45.837906927s") and OpenAI/Groq x-ratelimit-reset-* ("1s",
// "6m0s", "120ms", "2m59.56s").
#pragma once

#include <optional>
#include <string_view>

namespace celaest::core {

// Milliseconds, rounded UP (waiting a fraction longer than asked is safe; shorter is not).
// Units h, m, s, ms, us/µs/μs, ns; components may repeat ("1h2m3.5s"); "0" alone is zero.
// nullopt for anything else: empty, a sign, a missing unit, more than ~100 years.
std::optional<long> parse_duration_ms(std::string_view text);

// A non-negative decimal number of seconds ("30", "1.5") to milliseconds, rounded up.
std::optional<long> parse_seconds_ms(std::string_view text);

// A non-negative decimal number of milliseconds ("250", "120.2"), rounded up.
std::optional<long> parse_millis_ms(std::string_view text);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
