// _parse_user_agent(user_agent): what track_event records as device_type, browser and os
// when the client did not say (core/user_agent).
#include "core/user_agent.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

#include <string>

namespace {

// The values come from the parser's fixed vocabulary (no quotes or backslashes), so
// they are written into the JSON as they are.
void add_member(std::string& json, const char* key, const std::string& value) {
  if (value.empty()) return;
  if (json.size() > 1) json += ',';
  json += '"';
  json += key;
  json += "\":\"";
  json += value;
  json += '"';
}

}  // namespace

CELAEST_FUNCTION(celaest_parse_user_agent) {
  // STRICT in SQL: the argument is present.
  std::optional<std::string> user_agent = celaest::pg::text_arg(fcinfo, 0);
  celaest::core::UserAgentInfo info = celaest::core::parse_user_agent(*user_agent);
  std::string json = "{";
  add_member(json, "device_type", info.device_type);
  add_member(json, "browser", info.browser);
  add_member(json, "os", info.os);
  json += '}';
  return celaest::pg::jsonb_datum(json);
}
