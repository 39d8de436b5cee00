// Module 10's identity helpers, native: the acting identity is worked out once per statement
// (pg/identity/acting_identity.hpp) and these read it.
#include "pg/identity/acting_identity.hpp"  // first: it brings a pure core header

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

using celaest::pg::acting_identity;

CELAEST_FUNCTION(celaest_caller_level) {
  const char* level = celaest::pg::level_name(acting_identity(fcinfo->flinfo->fn_oid).level);
  if (level == nullptr) PG_RETURN_NULL();
  return celaest::pg::text_datum(level);
}

CELAEST_FUNCTION(celaest_current_user_id_or_null) {
  const auto& user = acting_identity(fcinfo->flinfo->fn_oid).user_id;
  if (!user) PG_RETURN_NULL();
  return celaest::pg::uuid_datum(*user);
}

CELAEST_FUNCTION(celaest_current_org_id_or_null) {
  const auto& organization = acting_identity(fcinfo->flinfo->fn_oid).organization_id;
  if (!organization) PG_RETURN_NULL();
  return celaest::pg::uuid_datum(*organization);
}

CELAEST_FUNCTION(celaest_current_user_is_super_admin) {
  return BoolGetDatum(acting_identity(fcinfo->flinfo->fn_oid).super_admin);
}
