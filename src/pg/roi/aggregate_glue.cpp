#include "pg/roi/aggregate_glue.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace celaest::pg::roi {

MemoryContext aggregate_context(FunctionCallInfo fcinfo) {
  MemoryContext context = nullptr;
  if (!AggCheckCallContext(fcinfo, &context))
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "celaest ROI aggregate called outside an aggregate");
  return context;
}

ArrayElements array_elements(FunctionCallInfo fcinfo, int argument, Oid element_type) {
  if (PG_ARGISNULL(argument)) return {};
  ArrayElements out;
  pg_guarded([&] {
    ArrayType* array = PG_GETARG_ARRAYTYPE_P(argument);
    int16 length;
    bool by_value;
    char alignment;
    get_typlenbyvalalign(element_type, &length, &by_value, &alignment);
    deconstruct_array(array, element_type, length, by_value, alignment, &out.values, &out.nulls, &out.count);
  });
  return out;
}

core::UuidBytes uuid_bytes(Datum datum) {
  core::UuidBytes bytes;
  std::memcpy(bytes.data(), DatumGetUUIDP(datum)->data, bytes.size());
  return bytes;
}

std::vector<core::UuidBytes> uuid_list(const ArrayElements& elements) {
  std::vector<core::UuidBytes> out;
  for (int i = 0; i < elements.count; ++i)
    if (!elements.nulls[i]) out.push_back(uuid_bytes(elements.values[i]));
  return out;
}

Datum bytea_datum(const std::vector<unsigned char>& bytes) {
  auto* out = static_cast<bytea*>(pg_guarded([&] { return palloc_extended(VARHDRSZ + bytes.size(), MCXT_ALLOC_HUGE); }));
  SET_VARSIZE(out, VARHDRSZ + bytes.size());
  std::memcpy(VARDATA(out), bytes.data(), bytes.size());
  return PointerGetDatum(out);
}

}  // namespace celaest::pg::roi
