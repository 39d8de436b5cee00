// The profile of the user an AI call acts for, read straight from the primary-key indexes of
// users_profile and organizations: what module 84's profile query
//   SELECT u.organization_id, o.deleted_at IS NOT NULL, u.role, u.scopes ? 'ai:run'
//     FROM celaest.users_profile u LEFT JOIN celaest.organizations o ON o.id = u.organization_id
//    WHERE u.id = $1 AND u.deleted_at IS NULL
// returns, without planning or starting an executor for a two-table join (which cost more
// than the two reads: ~100k instructions of an AI call's ~1.5M). The licensing fast path
// reads the license row the same way (pg/licensing/license_row.hpp).
#pragma once

#include <optional>
#include <string>

namespace celaest::pg {

struct ProfileRow {
  bool live = false;                           // a row with that id, not soft-deleted
  std::optional<std::string> organization_id;  // u.organization_id
  bool organization_deleted = false;           // o.deleted_at IS NOT NULL (false with no such row)
  std::string role;                            // u.role
  bool scope_ai_run = false;                   // u.scopes ? 'ai:run'
};

// nullopt: the read may not stand in for the query (row-level security applies to the current
// user, the user may not read a table, the schema is not the expected one, no snapshot): run
// the query instead. Reads with the snapshot the query would have had (SPI, not read-only).
std::optional<ProfileRow> read_profile_row(const std::string& user_id);

}  // namespace celaest::pg
