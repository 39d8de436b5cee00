// Module 84's access predicates for row-level security, native over the statement's acting
// identity (pg/identity/acting_identity.hpp).
#include "pg/identity/acting_identity.hpp"  // first: it brings a pure core header

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

#include <optional>
#include <string>

extern "C" {
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
}

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

// An unknown right is a bug in a policy or function: say so rather than deny. NULL: nobody.
CELAEST_FUNCTION(celaest_acting_user_may) {
  if (PG_ARGISNULL(0)) return BoolGetDatum(false);
  const std::string name = *celaest::pg::text_arg(fcinfo, 0);
  const std::optional<Right> right = celaest::core::right_named(name);
  if (!right)
    throw celaest::pg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown CELAEST right \"" + name + "\"", "",
                             "Rights are ai:run, batches:manage, users:manage, org:settings and platform:manage.");
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).may(*right));
}

// _role_allows(role, scopes, right): the role's rights (core/access_rights), plus any right its
// scopes name but platform:manage. NULL in, NULL out.
CELAEST_FUNCTION(celaest_role_allows) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_NULL();
  const std::string role = *celaest::pg::enum_arg(fcinfo, 0);
  const std::string name = *celaest::pg::text_arg(fcinfo, 2);
  const std::optional<Right> right = celaest::core::right_named(name);
  if (right && (celaest::core::rights_of_role(role) & static_cast<unsigned>(*right)) != 0) return BoolGetDatum(true);
  if (right && !celaest::core::scope_may_grant(*right)) return BoolGetDatum(false);
  const Datum scopes = PG_GETARG_DATUM(1);
  const bool scoped = celaest::pg::pg_guarded([&] {
    return DatumGetBool(DirectFunctionCall2(jsonb_exists, scopes, CStringGetTextDatum(name.c_str())));
  });
  return BoolGetDatum(scoped);
}
