#include "pg/identity/caller.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"
#include "pg/boundary/wall_clock.hpp"

#include <unordered_map>

namespace celaest::pg {

namespace {

// Organization of each user seen by this backend, with the identity generation it was read
// under (src/sql/78_cache_validity.sql invalidates on a move, a soft delete or a removal). Only users with a
// live profile and an organization are kept: every refusal is read again, and raised, by
// the query.
struct KeptOrganization {
  uint64_t generation;
  int64_t filled_at_ms;
  std::string organization_id;
};

std::unordered_map<std::string, KeptOrganization>& organization_of() {
  static std::unordered_map<std::string, KeptOrganization> copies;
  return copies;
}

constexpr size_t kMaxCachedUsers = 100'000;

}  // namespace

Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id) {
  // current_user_id() is asked only when no user was given: it raises when there is none,
  // and the planner may evaluate it early inside a coalesce() of a cached plan.
  std::string uid = user_id ? *user_id : spi.scalar("SELECT celaest.current_user_id()::text", {}, true).value_or("");
  const std::optional<uint64_t> generation = cache_validity::current(cache_validity::Domain::Identity);
  auto& copies = organization_of();
  const int64_t now = now_ms();
  if (generation) {
    if (auto found = copies.find(uid); found != copies.end() && found->second.generation == *generation &&
                                       now - found->second.filled_at_ms < cache_validity::kMaxCopyAgeMs)
      return Caller{uid, found->second.organization_id};
  }
  // Not read-only: a snapshot newer than the generation read above (cache_validity.hpp).
  QueryResult rows = spi.run(
      "SELECT $1::uuid::text, u.id IS NOT NULL, u.organization_id::text"
      " FROM (SELECT 1) x LEFT JOIN celaest.users_profile u ON u.id = $1::uuid AND u.deleted_at IS NULL",
      {uid});
  if (rows.at(0, 1) != Text("t"))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "user " + uid + " has no CELAEST profile", "",
                "Create the user in celaest.users_profile.");
  if (!rows.at(0, 2))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "user " + uid + " belongs to no organization", "",
                "Set celaest.users_profile.organization_id.");
  if (generation) {
    if (copies.size() >= kMaxCachedUsers) copies.clear();
    copies[uid] = KeptOrganization{*generation, now, *rows.at(0, 2)};
  }
  return Caller{uid, *rows.at(0, 2)};
}

}  // namespace celaest::pg
