#include "pg/boundary/datum.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"
}

namespace celaest::pg {

namespace {

// Runs the type's output function on argument `index`.
std::optional<std::string> output_of_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  char* cstring = pg_guarded([&] {
    Oid type = get_fn_expr_argtype(fcinfo->flinfo, index);
    Oid output_function;
    bool is_varlena;
    getTypeOutputInfo(type, &output_function, &is_varlena);
    return OidOutputFunctionCall(output_function, PG_GETARG_DATUM(index));
  });
  std::string value(cstring);
  pfree(cstring);
  return value;
}

}  // namespace

std::optional<std::string> text_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  text* detoasted = pg_guarded([&] { return PG_GETARG_TEXT_PP(index); });
  return std::string(VARDATA_ANY(detoasted), VARSIZE_ANY_EXHDR(detoasted));
}

std::optional<std::string> uuid_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  char* cstring = pg_guarded([&] { return DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(index))); });
  std::string value(cstring);
  pfree(cstring);
  return value;
}

std::optional<std::string> jsonb_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  char* cstring = pg_guarded([&] { return DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(index))); });
  std::string value(cstring);
  pfree(cstring);
  return value;
}

std::optional<std::string> enum_arg(FunctionCallInfo fcinfo, int index) { return output_of_arg(fcinfo, index); }

std::optional<std::string> interval_arg(FunctionCallInfo fcinfo, int index) { return output_of_arg(fcinfo, index); }

std::optional<long long> int_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  Oid type = pg_guarded([&] { return get_fn_expr_argtype(fcinfo->flinfo, index); });
  switch (type) {
    case INT2OID: return PG_GETARG_INT16(index);
    case INT4OID: return PG_GETARG_INT32(index);
    default: return PG_GETARG_INT64(index);
  }
}

Datum text_datum(const std::string& value) {
  return pg_guarded([&] { return PointerGetDatum(cstring_to_text_with_len(value.data(), (int)value.size())); });
}

Datum jsonb_datum(const std::string& json_text) {
  return pg_guarded([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json_text.c_str())); });
}

Datum uuid_datum(const std::string& uuid_text) {
  return pg_guarded([&] { return DirectFunctionCall1(uuid_in, CStringGetDatum(uuid_text.c_str())); });
}

}  // namespace celaest::pg
