// Module 10's identity helpers, native: the acting identity is worked out once per statement
// (pg/identity/acting_identity.hpp) and these read it.
#include "pg/identity/acting_identity.hpp"  // first: it brings a pure core header

#include "pg/identity/caller.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
}

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

// _ai_caller(p_user_id uuid, p_function text, OUT user_id uuid, OUT organization_id uuid): the
// rules of pg/identity/caller.hpp, which ai_chat, run_prompt and submit_batch call directly.
CELAEST_FUNCTION(celaest_ai_caller) {
  const std::optional<std::string> function = celaest::pg::text_arg(fcinfo, 1);
  celaest::pg::SpiSession spi;
  const celaest::pg::Caller caller = celaest::pg::resolve_caller(spi, celaest::pg::uuid_arg(fcinfo, 0),
                                                                 function.value_or("").c_str(), fcinfo->flinfo->fn_oid);
  const Datum user = celaest::pg::uuid_datum(caller.user_id);
  const Datum organization = celaest::pg::uuid_datum(caller.organization_id);
  return celaest::pg::pg_guarded([&] {
    TupleDesc descriptor = nullptr;
    if (get_call_result_type(fcinfo, nullptr, &descriptor) != TYPEFUNC_COMPOSITE)
      elog(ERROR, "celaest: _ai_caller must return a record of two uuids");
    descriptor = BlessTupleDesc(descriptor);
    Datum values[2] = {user, organization};
    bool nulls[2] = {false, false};
    return HeapTupleGetDatum(heap_form_tuple(descriptor, values, nulls));
  });
}
