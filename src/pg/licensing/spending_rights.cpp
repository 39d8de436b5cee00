#include "pg/licensing/spending_rights.hpp"
#include "pg/identity/acting_identity.hpp"  // first of the pg headers: it brings a pure core header

#include "pg/boundary/boundary.hpp"

namespace celaest::pg {

namespace {

[[noreturn]] void refuse(const char* function, const std::string& reason, const std::string& hint,
                         const std::string& detail = {}) {
  throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("permission denied for function ") + function + ": " + reason,
              detail, hint);
}

}  // namespace

SpendAs spending_rights(const std::string& organization_id, const char* function, unsigned int function_oid) {
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
