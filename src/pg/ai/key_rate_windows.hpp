// The rate-limit windows of each API key of the pool (fixed minute and day windows, UTC),
// kept in shared memory so that RPM/TPM/RPD hold across concurrent sessions without a row
// lock held during a call, and the cool-down a provider asked for (429 with Retry-After).
// Not preloaded: the windows hold within each backend only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace celaest::pg::key_rate_windows {

struct KeyLimits {
  std::optional<int64_t> rpm, tpm, rpd;
};
enum class Admission { Admitted, NoRoom, CoolingDown };

// Atomically admits one request if every window has room, and counts it.
Admission admit_request(const std::string& key_id, const KeyLimits& limits, int64_t now_ms);
void record_tokens(const std::string& key_id, int64_t tokens, int64_t now_ms);
void cool_down(const std::string& key_id, int64_t until_ms);  // after a 429 with Retry-After
// Keys still cooling down at now_ms, each with the instant (Unix ms) its cool-down ends: what
// v_api_pool_status reports.
std::vector<std::pair<std::string, int64_t>> cooling_keys(int64_t now_ms);

void reserve_shared_memory();  // from _PG_init

}  // namespace celaest::pg::key_rate_windows
