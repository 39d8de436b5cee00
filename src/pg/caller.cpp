#include "pg/caller.hpp"

#include "pg/boundary.hpp"

namespace celaest::pg {

Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id) {
  // current_user_id() is asked only when no user was given: it raises when there is none,
  // and the planner may evaluate it early inside a coalesce() of a cached plan.
  std::string uid = user_id ? *user_id : spi.scalar("SELECT celaest.current_user_id()::text", {}, true).value_or("");
  QueryResult rows = spi.run(
      "SELECT $1::uuid::text, u.id IS NOT NULL, u.organization_id::text"
      " FROM (SELECT 1) x LEFT JOIN celaest.users_profile u ON u.id = $1::uuid AND u.deleted_at IS NULL",
      {uid}, true);
  if (rows.at(0, 1) != Text("t"))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "user " + uid + " has no CELAEST profile", "",
                "Create the user in celaest.users_profile.");
  if (!rows.at(0, 2))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "user " + uid + " belongs to no organization", "",
                "Set celaest.users_profile.organization_id.");
  return Caller{uid, *rows.at(0, 2)};
}

}  // namespace celaest::pg
