#include "pg/identity/caller.hpp"
#include "pg/identity/acting_identity.hpp"  // first of the pg headers: it brings a pure core header
#include "pg/identity/profile_row.hpp"

#include "pg/boundary/boundary.hpp"

namespace celaest::pg {

namespace {

[[noreturn]] void refuse(const char* function, const std::string& reason, const std::string& hint,
                         const std::string& detail = {}) {
  throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
              std::string("permission denied for function ") + function + (reason.empty() ? "" : ": " + reason), detail,
              hint);
}

// The acting user, as _acting_user_id decides it (module 84).
std::string acting_user(const ActingIdentity& identity, const std::optional<std::string>& user_id,
                        const char* function) {
  if (identity.level == AccessLevel::None)
    refuse(function, "", "A superuser grants one with celaest.grant_access(role, level).",
           "The calling role has no CELAEST access level.");
  const bool service = identity.level == AccessLevel::Service;
  // Below service the identity's user is auth.uid() itself (acting_identity.cpp): naming
  // anyone else is impersonation.
  if (!service && user_id && user_id != identity.user_id)
    refuse(function, "only a service caller may name the acting user", "Omit p_user_id: this role acts as auth.uid().");
  const std::optional<std::string>& acting = service && user_id ? user_id : identity.user_id;
  if (!acting)
    refuse(function, "no CELAEST user",
           service ? "Pass p_user_id, or SET LOCAL celaest.user_id = '<users_profile.id>'."
                   : "Call with an authenticated session (auth.uid()).");
  return *acting;
}

// Owner's rights (the functions calling this are SECURITY DEFINER): the profile and
// organization whatever row-level security shows. Straight from the indexes when nothing
// (row-level security, privileges) makes the query differ; else the query. Not read-only:
// the same snapshot rules as the rest of the call (cache_validity.hpp).
ProfileRow profile_of(SpiSession& spi, const std::string& user_id) {
  if (std::optional<ProfileRow> read = read_profile_row(user_id)) return *read;
  QueryResult rows = spi.run(
      "SELECT u.organization_id::text, o.deleted_at IS NOT NULL, u.role::text, u.scopes ? 'ai:run'"
      "  FROM celaest.users_profile AS u"
      "  LEFT JOIN celaest.organizations AS o ON o.id = u.organization_id"
      " WHERE u.id = $1::uuid AND u.deleted_at IS NULL",
      {user_id});
  ProfileRow profile;
  if (rows.empty()) return profile;
  profile.live = true;
  profile.organization_id = rows.at(0, 0);
  profile.organization_deleted = rows.at(0, 1).value_or("f") == "t";
  profile.role = rows.at(0, 2).value_or("");
  profile.scope_ai_run = rows.at(0, 3).value_or("f") == "t";
  return profile;
}

}  // namespace

Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id, const char* function,
                      unsigned int function_oid) {
  // Asked every call, not kept per backend: the answer depends on the calling role, its
  // settings and auth.uid() as much as on the profile, and every refusal must be exact. The
  // identity is the statement's (worked out once per statement, acting_identity.hpp).
  const ActingIdentity& identity = acting_identity(function_oid);
  const std::string acting = acting_user(identity, user_id, function);
  const ProfileRow profile = profile_of(spi, acting);
  if (!profile.live)
    refuse(function, "user " + acting + " has no CELAEST profile",
           "Create the user in celaest.users_profile (a soft-deleted user acts for nobody).");
  if (!profile.organization_id || profile.organization_deleted)
    refuse(function, "user " + acting + " belongs to no organization",
           "Set celaest.users_profile.organization_id (a soft-deleted organization acts for nobody).");
  // _role_allows(role, scopes, 'ai:run'): the role's rights, else a scope naming the right.
  const bool allowed = (core::rights_of_role(profile.role) & static_cast<unsigned>(Right::AiRun)) != 0 ||
                       (core::scope_may_grant(Right::AiRun) && profile.scope_ai_run);
  if (!allowed)
    refuse(function, "role " + profile.role + " may not run AI calls",
           "Operators, managers, admins and super_admins run AI calls and batches, or a user with scope ai:run.");
  return Caller{acting, *profile.organization_id};
}

}  // namespace celaest::pg
