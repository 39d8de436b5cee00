// Module 84's access predicates for row-level security, native over the statement's acting
// identity (pg/identity/acting_identity.hpp).
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/identity/acting_identity.hpp"

#include <string>

using celaest::pg::acting_identity;
using celaest::pg::Right;

CELAEST_FUNCTION(celaest_sees_every_org) {
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).sees_every_org());
}

CELAEST_FUNCTION(celaest_writes_every_org) {
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).writes_every_org());
}

CELAEST_FUNCTION(celaest_manages_platform) {
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).manages_platform());
}

namespace {

Right right_named(const std::string& name) {
  if (name == "ai:run") return Right::AiRun;
  if (name == "batches:manage") return Right::BatchesManage;
  if (name == "users:manage") return Right::UsersManage;
  if (name == "org:settings") return Right::OrgSettings;
  if (name == "platform:manage") return Right::PlatformManage;
  // A policy or function naming a right that does not exist is a bug: say so rather than deny.
  throw celaest::pg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown CELAEST right \"" + name + "\"", "",
                           "Rights are ai:run, batches:manage, users:manage, org:settings and platform:manage.");
}

}  // namespace

// STRICT in SQL.
CELAEST_FUNCTION(celaest_acting_user_may) {
  const Right right = right_named(*celaest::pg::text_arg(fcinfo, 0));
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).may(right));
}
