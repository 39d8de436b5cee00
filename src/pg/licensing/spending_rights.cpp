#include "pg/licensing/spending_rights.hpp"
#include "pg/identity/acting_identity.hpp"  // first of the pg headers: it brings a pure core header

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
}

namespace celaest::pg {

namespace {

// Whether row-level security binds the current user's statements on celaest.licenses (it
// does not bind superusers, the owner, BYPASSRLS roles). Two syscache lookups and no query:
// consume_quota asks on every call.
bool row_security_binds_licenses() {
  return pg_guarded([] {
    const Oid schema = get_namespace_oid("celaest", true);
    const Oid licenses = OidIsValid(schema) ? get_relname_relid("licenses", schema) : InvalidOid;
    return OidIsValid(licenses) && check_enable_rls(licenses, InvalidOid, true) == RLS_ENABLED;
  });
}

[[noreturn]] void refuse(const char* function, const std::string& reason, const std::string& hint,
                         const std::string& detail = {}) {
  throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("permission denied for function ") + function + ": " + reason,
              detail, hint);
}

}  // namespace

SpendAs spending_rights(const std::string& organization_id, const char* function, unsigned int function_oid) {
  if (!row_security_binds_licenses()) return SpendAs::Caller;
  const ActingIdentity& identity = acting_identity(function_oid);
  if (identity.writes_every_org()) return SpendAs::Caller;
  switch (identity.level) {
    case AccessLevel::None:
      refuse(function, "no CELAEST access level", "A superuser grants one with celaest.grant_access(role, level).");
    case AccessLevel::Readonly:
      refuse(function, "readonly callers neither write nor spend", "Spend through a service or authenticated role.");
    case AccessLevel::Service:
    case AccessLevel::Authenticated:
      break;
  }
  if (!identity.user_id)
    refuse(function, "no CELAEST user",
           identity.level == AccessLevel::Service
               ? "SET LOCAL celaest.user_id = '<users_profile.id>' of a user of the organization, or RESET it to act for no user."
               : "Call with an authenticated session (auth.uid()).");
  if (!identity.organization_id)
    refuse(function, "the acting user belongs to no organization",
           "A soft-deleted user or organization acts for nobody.");
  if (*identity.organization_id != organization_id)
    refuse(function, "the acting user may not spend for organization " + organization_id,
           "A user spends only the quota of its own organization.");
  if (!identity.may(Right::AiRun))
    refuse(function, "the acting user's role may not spend quota",
           "Operators, managers, admins and super_admins run AI calls and spend quota, or a user with scope ai:run.");
  return SpendAs::Owner;
}

}  // namespace celaest::pg
