// _api_key_cooldowns(): the keys cooling down after a 429 with Retry-After, for
// v_api_pool_status. The cool-downs live in shared memory, not in a table.
#include "pg/ai/key_rate_windows.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/wall_clock.hpp"

#include <string>

CELAEST_FUNCTION(celaest_api_key_cooldowns) {
  // {"<key id>": <end of its cool-down, Unix ms>, ...}; key ids are canonical uuid text,
  // so they need no JSON escaping.
  std::string json = "{";
  for (const auto& [key_id, until_ms] : celaest::pg::key_rate_windows::cooling_keys(celaest::pg::now_ms())) {
    if (json.size() > 1) json += ',';
    json += '"' + key_id + "\":" + std::to_string(until_ms);
  }
  json += '}';
  return celaest::pg::jsonb_datum(json);
}
