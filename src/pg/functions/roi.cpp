// The ROI roll-up's one pass over processed_tasks as a native aggregate (core/roi_tally):
//   _roi_scan(task columns..., run constants...) -> bytea
// counts every task in its (organization, period[, model or prompt]) group; it has a partial
// form (combine, serialize, deserialize), so PostgreSQL runs it in parallel workers over a
// Parallel Seq Scan, each worker tallying its share of the table. No SQL function runs per
// task. Its result (the finished figures of every group, as bytes) is turned into rows by
//   _roi_scan_rows(bytea, organizations uuid[], period starts date[])
// for the SQL side (celaest._roi_tally, src/sql/55_roi.sql), which applies API.md's formulas.
//
// The aggregate state is a C++ object owned by the aggregate's memory context: a reset
// callback deletes it when PostgreSQL frees that context (end of the query, or an error).
#include "core/roi_tally.hpp"
#include "pg/boundary/boundary.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using celaest::core::Int128;
using celaest::core::RoiCalendar;
using celaest::core::RoiFigures;
using celaest::core::RoiScan;
using celaest::core::RoiTally;
using celaest::core::RoiTaskRow;
using celaest::core::UuidBytes;
using celaest::pg::Error;
using celaest::pg::pg_guarded;

constexpr int kCostScale = 6;  // processed_tasks.cost_usd is numeric(10,6)

// The transition state: the run (calendar, organizations, prompts) while tasks are being
// added; a bare tally when it was rebuilt from a worker's bytes or from merges.
struct RoiScanState {
  std::unique_ptr<RoiScan> scan;
  RoiTally merged;
  RoiTally& tally() { return scan ? scan->tally() : merged; }
};

void delete_state(void* state) { delete static_cast<RoiScanState*>(state); }

// A new state owned by `context`: deleted by the context's reset callback.
RoiScanState* new_state(MemoryContext context) {
  auto* callback = static_cast<MemoryContextCallback*>(
      pg_guarded([&] { return MemoryContextAllocZero(context, sizeof(MemoryContextCallback)); }));
  auto* state = new RoiScanState();
  callback->func = delete_state;
  callback->arg = state;
  pg_guarded([&] { MemoryContextRegisterResetCallback(context, callback); });
  return state;
}

MemoryContext aggregate_context(FunctionCallInfo fcinfo) {
  MemoryContext context = nullptr;
  if (!AggCheckCallContext(fcinfo, &context))
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "celaest ROI aggregate called outside an aggregate");
  return context;
}

UuidBytes uuid_bytes(Datum datum) {
  UuidBytes bytes;
  std::memcpy(bytes.data(), DatumGetUUIDP(datum)->data, bytes.size());
  return bytes;
}

// The elements of a one-dimensional array argument (NULL elements flagged).
struct ArrayElements {
  Datum* values = nullptr;
  bool* nulls = nullptr;
  int count = 0;
};

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

std::vector<UuidBytes> uuid_list(const ArrayElements& elements) {
  std::vector<UuidBytes> out;
  for (int i = 0; i < elements.count; ++i)
    if (!elements.nulls[i]) out.push_back(uuid_bytes(elements.values[i]));
  return out;
}

// The run's constants, from the aggregate's arguments 13.. (see _roi_scan in 55_roi.sql).
std::unique_ptr<RoiScan> scan_from_arguments(FunctionCallInfo fcinfo) {
  const ArrayElements organizations = array_elements(fcinfo, 13, UUIDOID);
  const ArrayElements zones = array_elements(fcinfo, 14, INT4OID);
  const ArrayElements starts = array_elements(fcinfo, 15, TIMESTAMPTZOID);
  const ArrayElements periods = array_elements(fcinfo, 16, INT4OID);
  const ArrayElements prompts = array_elements(fcinfo, 17, UUIDOID);
  const ArrayElements minutes = array_elements(fcinfo, 18, TEXTOID);
  if (zones.count != organizations.count || prompts.count != minutes.count)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI scan: inconsistent run constants");
  std::vector<std::uint32_t> zone_of_organization;
  for (int i = 0; i < zones.count; ++i)
    zone_of_organization.push_back(static_cast<std::uint32_t>(DatumGetInt32(zones.values[i]) - 1));  // 1-based
  std::vector<std::int64_t> day_starts;
  for (int i = 0; i < starts.count; ++i) day_starts.push_back(DatumGetTimestampTz(starts.values[i]));
  std::vector<std::int32_t> period_of_day;
  for (int i = 0; i < periods.count; ++i)
    period_of_day.push_back(periods.nulls[i] ? -1 : DatumGetInt32(periods.values[i]) - 1);  // 1-based
  std::vector<std::string> minute_texts;
  for (int i = 0; i < minutes.count; ++i) {
    if (minutes.nulls[i]) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI scan: NULL manual minutes");
    const char* minute_text = pg_guarded([&] { return text_to_cstring(DatumGetTextPP(minutes.values[i])); });
    minute_texts.emplace_back(minute_text);
  }
  try {
    return std::make_unique<RoiScan>(uuid_list(organizations),
                                     RoiCalendar(std::move(zone_of_organization), std::move(day_starts),
                                                 std::move(period_of_day)),
                                     uuid_list(prompts), minute_texts);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("celaest ROI scan: ") + e.what());
  }
}

// cost_usd (numeric(10,6)) in millionths, read from the numeric's bytes.
std::int64_t cost_micros(Datum datum) {
  auto* value = reinterpret_cast<struct varlena*>(DatumGetPointer(datum));
  if (VARATT_IS_EXTERNAL(value) || VARATT_IS_COMPRESSED(value))
    value = pg_guarded([&] { return pg_detoast_datum_packed(value); });
  const auto micros = celaest::core::numeric_to_scaled(reinterpret_cast<const unsigned char*>(VARDATA_ANY(value)),
                                                       VARSIZE_ANY_EXHDR(value), kCostScale);
  if (!micros)
    throw Error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "celaest ROI: a task's cost_usd is not a number of dollars",
                "cost_usd is NaN, infinite or has more than 6 decimals.");
  return *micros;
}

std::optional<std::int32_t> optional_int4(FunctionCallInfo fcinfo, int argument) {
  if (PG_ARGISNULL(argument)) return std::nullopt;
  return PG_GETARG_INT32(argument);
}

std::optional<UuidBytes> optional_uuid(FunctionCallInfo fcinfo, int argument) {
  if (PG_ARGISNULL(argument)) return std::nullopt;
  return uuid_bytes(PG_GETARG_DATUM(argument));
}

Datum bytea_datum(const std::vector<unsigned char>& bytes) {
  auto* out = static_cast<bytea*>(pg_guarded([&] { return palloc_extended(VARHDRSZ + bytes.size(), MCXT_ALLOC_HUGE); }));
  SET_VARSIZE(out, VARHDRSZ + bytes.size());
  std::memcpy(VARDATA(out), bytes.data(), bytes.size());
  return PointerGetDatum(out);
}

}  // namespace

// _roi_scan's transition: arguments 1.. are the task's columns (organization_id, created_at,
// status, cost_usd, tokens_total, execution_time_ms, ai_time_ms, user_id, prompt_id, the
// dimension's id), then the run's constants ('completed', 'failed', organizations, their zones,
// the zones' local day starts, each local day's period, the prompts with manual minutes and
// their minutes).
CELAEST_FUNCTION(celaest_roi_scan_step) {
  RoiScanState* state = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  if (state == nullptr) {  // the first task: the aggregate's context is looked up once
    state = new_state(aggregate_context(fcinfo));
    state->scan = scan_from_arguments(fcinfo);
  }
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(8)) return PointerGetDatum(state);
  RoiTaskRow task;
  std::memcpy(task.organization.data(), PG_GETARG_UUID_P(1)->data, task.organization.size());
  task.created_at = PG_GETARG_TIMESTAMPTZ(2);
  const Oid status = PG_GETARG_OID(3);
  task.completed = !PG_ARGISNULL(11) && status == PG_GETARG_OID(11);
  task.failed = !PG_ARGISNULL(12) && status == PG_GETARG_OID(12);
  task.cost_micros = PG_ARGISNULL(4) ? 0 : cost_micros(PG_GETARG_DATUM(4));
  task.tokens = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
  task.execution_ms = optional_int4(fcinfo, 6);
  task.ai_ms = optional_int4(fcinfo, 7);
  std::memcpy(task.user.data(), PG_GETARG_UUID_P(8)->data, task.user.size());
  task.prompt = optional_uuid(fcinfo, 9);
  task.dimension = optional_uuid(fcinfo, 10);
  if (!state->scan) throw Error(ERRCODE_INTERNAL_ERROR, "celaest ROI scan: a merged state cannot take tasks");
  state->scan->add(task);
  return PointerGetDatum(state);
}

CELAEST_FUNCTION(celaest_roi_scan_combine) {
  MemoryContext context = aggregate_context(fcinfo);
  auto* left = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  auto* right = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(1));
  if (right == nullptr) {
    if (left == nullptr) PG_RETURN_NULL();
    return PointerGetDatum(left);
  }
  // The state kept must live in the aggregate's context, whatever context `right` is in.
  if (left == nullptr) left = new_state(context);
  left->tally().merge(right->tally());
  return PointerGetDatum(left);
}

CELAEST_FUNCTION(celaest_roi_scan_serialize) {
  auto* state = reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  return bytea_datum(state->tally().serialize());
}

CELAEST_FUNCTION(celaest_roi_scan_deserialize) {
  bytea* in = pg_guarded([&] { return PG_GETARG_BYTEA_PP(0); });
  RoiScanState* state = new_state(CurrentMemoryContext);
  try {
    state->merged = RoiTally::deserialize(reinterpret_cast<const unsigned char*>(VARDATA_ANY(in)),
                                          VARSIZE_ANY_EXHDR(in));
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI scan: malformed partial state: ") + e.what());
  }
  return PointerGetDatum(state);
}

// The finished figures of every group, as bytes for _roi_scan_rows; NULL when no task counted.
CELAEST_FUNCTION(celaest_roi_scan_final) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  auto* state = reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  RoiTally& tally = state->tally();
  // Declared FINALFUNC_MODIFY = READ_WRITE: finishing reorders the kept values.
  return bytea_datum(celaest::core::encode_figures(tally.finish(), tally.minutes_scale()));
}

// _roi_scan_rows(figures bytea, organizations uuid[], period_starts date[]) RETURNS TABLE(
//   organization_id uuid, period_start date, dim_id uuid, tasks_completed bigint,
//   tasks_failed bigint, cost_ai_exact numeric, total_tokens bigint, avg_ms integer,
//   p95_ms integer, p99_ms integer, prompt_minutes numeric, default_minute_tasks bigint,
//   ai_ms bigint, active_users integer)
CELAEST_FUNCTION(celaest_roi_scan_rows) {
  bytea* in = pg_guarded([&] { return PG_GETARG_BYTEA_PP(0); });
  int minutes_scale = 0;
  std::vector<RoiFigures> figures;
  try {
    figures = celaest::core::decode_figures(reinterpret_cast<const unsigned char*>(VARDATA_ANY(in)),
                                            VARSIZE_ANY_EXHDR(in), &minutes_scale);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI scan: malformed figures: ") + e.what());
  }
  const ArrayElements organizations = array_elements(fcinfo, 1, UUIDOID);
  const ArrayElements periods = array_elements(fcinfo, 2, DATEOID);
  pg_guarded([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  for (const RoiFigures& f : figures) {
    if (static_cast<int>(f.organization) >= organizations.count || static_cast<int>(f.period) >= periods.count)
      throw Error(ERRCODE_DATA_CORRUPTED, "celaest ROI scan: figures of an organization or period not in the run");
    // Manual minutes beyond int64 once scaled go through numeric's text input.
    const bool minutes_fit = f.prompt_minutes >= INT64_MIN && f.prompt_minutes <= INT64_MAX;
    const std::string minutes_text = minutes_fit ? std::string() : celaest::core::format_scaled(f.prompt_minutes, minutes_scale);
    pg_guarded([&] {
      Datum values[14];
      bool nulls[14] = {false};
      values[0] = organizations.values[f.organization];
      values[1] = periods.values[f.period];
      if (f.has_dimension) {
        auto* dimension = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        std::memcpy(dimension->data, f.dimension.data(), f.dimension.size());
        values[2] = UUIDPGetDatum(dimension);
      } else {
        nulls[2] = true;
      }
      values[3] = Int64GetDatum(f.tasks_completed);
      values[4] = Int64GetDatum(f.tasks_failed);
      values[5] = NumericGetDatum(int64_div_fast_to_numeric(f.cost_micros, kCostScale));
      values[6] = Int64GetDatum(f.total_tokens);
      nulls[7] = !f.avg_execution_ms;
      values[7] = Int32GetDatum(f.avg_execution_ms.value_or(0));
      nulls[8] = !f.p95_execution_ms;
      values[8] = Int32GetDatum(f.p95_execution_ms.value_or(0));
      nulls[9] = !f.p99_execution_ms;
      values[9] = Int32GetDatum(f.p99_execution_ms.value_or(0));
      values[10] = minutes_fit ? NumericGetDatum(int64_div_fast_to_numeric(static_cast<int64>(f.prompt_minutes), minutes_scale))
                               : DirectFunctionCall3(numeric_in, CStringGetDatum(minutes_text.c_str()),
                                                     ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
      values[11] = Int64GetDatum(f.default_minute_tasks);
      values[12] = Int64GetDatum(f.ai_ms);
      values[13] = Int32GetDatum(static_cast<int32>(f.active_users));
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    });
  }
  return (Datum)0;
}
