// Two aggregates for the ROI roll-up that PostgreSQL can split across parallel workers (the
// built-in percentile_cont and count(DISTINCT …) cannot: they have no partial form):
//   _roi_exec_percentiles(integer) -> integer[] {p95, p99}: percentile_cont(0.95 / 0.99) of
//       the non-NULL values, rounded half away from zero; NULL when there are none;
//   _roi_distinct_count(uuid) -> integer: how many distinct non-NULL values.
// Each keeps the values it saw in one growing array in the aggregate's memory context;
// partial states travel between processes as bytea (serialize / deserialize) and are
// appended to one another (combine).
#include "core/percentile.hpp"
#include "pg/boundary/boundary.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <type_traits>

namespace {

using celaest::core::UuidBytes;
using celaest::pg::pg_guarded;

template <typename T>
struct Collected {
  static_assert(std::is_trivially_copyable_v<T>, "values are copied as bytes");
  Size count;
  Size capacity;
  T values[FLEXIBLE_ARRAY_MEMBER];
};

template <typename T>
Size bytes_for(Size capacity) {
  return offsetof(Collected<T>, values) + capacity * sizeof(T);
}

MemoryContext aggregate_context(FunctionCallInfo fcinfo) {
  MemoryContext context = nullptr;
  if (!AggCheckCallContext(fcinfo, &context))
    throw celaest::pg::Error(ERRCODE_FEATURE_NOT_SUPPORTED, "celaest ROI aggregate called outside an aggregate");
  return context;
}

template <typename T>
Collected<T>* new_collected(MemoryContext context, Size capacity) {
  auto* state = static_cast<Collected<T>*>(pg_guarded([&] { return MemoryContextAlloc(context, bytes_for<T>(capacity)); }));
  state->count = 0;
  state->capacity = capacity;
  return state;
}

// Room for `more` values; may move the state (repalloc keeps it in its context).
template <typename T>
Collected<T>* reserve(Collected<T>* state, Size more) {
  if (state->count + more <= state->capacity) return state;
  Size capacity = state->capacity * 2;
  while (capacity < state->count + more) capacity *= 2;
  state = static_cast<Collected<T>*>(pg_guarded([&] { return repalloc(state, bytes_for<T>(capacity)); }));
  state->capacity = capacity;
  return state;
}

// `compact` may shrink a full state before it grows (distinct values need not be kept twice).
template <typename T, typename Compact>
Datum collect(FunctionCallInfo fcinfo, const T& value, Compact compact) {
  MemoryContext context = aggregate_context(fcinfo);
  auto* state = PG_ARGISNULL(0) ? new_collected<T>(context, 16) : reinterpret_cast<Collected<T>*>(PG_GETARG_POINTER(0));
  if (state->count == state->capacity) {
    compact(state);
    // Grow unless compaction freed at least half: otherwise every append would compact again.
    if (state->count * 2 > state->capacity) state = reserve(state, state->capacity - state->count + 1);
  }
  state->values[state->count++] = value;
  return PointerGetDatum(state);
}

template <typename T>
Datum keep_state_or_null(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  return PG_GETARG_DATUM(0);
}

template <typename T>
Datum combine(FunctionCallInfo fcinfo) {
  MemoryContext context = aggregate_context(fcinfo);
  auto* left = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<Collected<T>*>(PG_GETARG_POINTER(0));
  auto* right = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<Collected<T>*>(PG_GETARG_POINTER(1));
  if (right == nullptr) {
    if (left == nullptr) PG_RETURN_NULL();
    return PointerGetDatum(left);
  }
  // The state kept must live in the aggregate's context, whatever context `right` is in.
  if (left == nullptr) left = new_collected<T>(context, right->count > 16 ? right->count : 16);
  left = reserve(left, right->count);
  std::memcpy(left->values + left->count, right->values, right->count * sizeof(T));
  left->count += right->count;
  return PointerGetDatum(left);
}

template <typename T>
Datum serialize(const Collected<T>* state) {
  const Size payload = sizeof(uint64) + state->count * sizeof(T);
  auto* out = static_cast<bytea*>(pg_guarded([&] { return palloc(VARHDRSZ + payload); }));
  SET_VARSIZE(out, VARHDRSZ + payload);
  const uint64 count = state->count;
  std::memcpy(VARDATA(out), &count, sizeof count);
  std::memcpy(VARDATA(out) + sizeof count, state->values, state->count * sizeof(T));
  return PointerGetDatum(out);
}

template <typename T>
Datum deserialize(FunctionCallInfo fcinfo) {
  bytea* in = pg_guarded([&] { return PG_GETARG_BYTEA_PP(0); });
  const char* data = VARDATA_ANY(in);
  uint64 count = 0;
  std::memcpy(&count, data, sizeof count);
  if (VARSIZE_ANY_EXHDR(in) != sizeof count + count * sizeof(T))
    throw celaest::pg::Error(ERRCODE_DATA_CORRUPTED, "celaest ROI aggregate: malformed partial state");
  auto* state = new_collected<T>(CurrentMemoryContext, count > 0 ? count : 1);
  std::memcpy(state->values, data + sizeof count, count * sizeof(T));
  state->count = count;
  return PointerGetDatum(state);
}

}  // namespace

// --------------------------------------------------------------------------- percentiles

CELAEST_FUNCTION(celaest_roi_collect_int4) {
  if (PG_ARGISNULL(1)) return keep_state_or_null<int32>(fcinfo);
  return collect<int32>(fcinfo, PG_GETARG_INT32(1), [](Collected<int32>*) {});
}

CELAEST_FUNCTION(celaest_roi_combine_int4) { return combine<int32>(fcinfo); }

CELAEST_FUNCTION(celaest_roi_serialize_int4) {
  return serialize(reinterpret_cast<Collected<int32>*>(PG_GETARG_POINTER(0)));
}

CELAEST_FUNCTION(celaest_roi_deserialize_int4) { return deserialize<int32>(fcinfo); }

CELAEST_FUNCTION(celaest_roi_exec_percentiles_final) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  auto* state = reinterpret_cast<Collected<int32>*>(PG_GETARG_POINTER(0));
  if (state->count == 0) PG_RETURN_NULL();
  // Declared FINALFUNC_MODIFY = READ_WRITE: reordering the values in place is allowed.
  const auto p95 = celaest::core::round_half_away_from_zero(
      celaest::core::percentile_cont(state->values, state->count, 0.95));
  const auto p99 = celaest::core::round_half_away_from_zero(
      celaest::core::percentile_cont(state->values, state->count, 0.99));
  Datum elements[2] = {Int32GetDatum(static_cast<int32>(p95)), Int32GetDatum(static_cast<int32>(p99))};
  ArrayType* array = pg_guarded([&] { return construct_array(elements, 2, INT4OID, sizeof(int32), true, TYPALIGN_INT); });
  return PointerGetDatum(array);
}

// --------------------------------------------------------------------------- distinct count

CELAEST_FUNCTION(celaest_roi_collect_uuid) {
  if (PG_ARGISNULL(1)) return keep_state_or_null<UuidBytes>(fcinfo);
  const pg_uuid_t* uuid = PG_GETARG_UUID_P(1);
  UuidBytes value;
  std::memcpy(value.data(), uuid->data, value.size());
  // A user has many tasks in a period: drop the repeats before growing, so that the state
  // stays near twice the number of distinct users.
  return collect<UuidBytes>(fcinfo, value, [](Collected<UuidBytes>* state) {
    state->count = celaest::core::sort_unique(state->values, state->count);
  });
}

CELAEST_FUNCTION(celaest_roi_combine_uuid) { return combine<UuidBytes>(fcinfo); }

CELAEST_FUNCTION(celaest_roi_serialize_uuid) {
  auto* state = reinterpret_cast<Collected<UuidBytes>*>(PG_GETARG_POINTER(0));
  // Duplicates need not travel: a user usually has many tasks in a period.
  state->count = celaest::core::sort_unique(state->values, state->count);
  return serialize(state);
}

CELAEST_FUNCTION(celaest_roi_deserialize_uuid) { return deserialize<UuidBytes>(fcinfo); }

CELAEST_FUNCTION(celaest_roi_distinct_count_final) {
  if (PG_ARGISNULL(0)) return Int32GetDatum(0);
  auto* state = reinterpret_cast<Collected<UuidBytes>*>(PG_GETARG_POINTER(0));
  return Int32GetDatum(static_cast<int32>(celaest::core::sort_unique(state->values, state->count)));
}
