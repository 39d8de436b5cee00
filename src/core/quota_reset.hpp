// When a provider's per-day quota plausibly resets. Google resets Gemini API daily quotas
// (QuotaFailure "…PerDay…") at midnight Pacific time; a key whose daily quota is spent is
// kept out of routing until then, instead of being retried every RetryInfo delay (tens of
// seconds) all day long.
#pragma once

#include <cstdint>

namespace celaest::core {

// The offset of America/Los_Angeles from UTC at a Unix instant (ms): -7 h during daylight
// saving time (since 2007: from the second Sunday of March, 02:00 local, to the first Sunday of
// November, 02:00 local), else -8 h. A fixed rule instead of the tz database: the core has no
// I/O, and a rule change would only move a cool-down by an hour.
int64_t pacific_offset_ms(int64_t utc_ms);

// The first midnight America/Los_Angeles strictly after `utc_ms`, as a Unix instant (ms).
int64_t next_pacific_midnight_ms(int64_t utc_ms);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
