// The ROI roll-up's one pass over processed_tasks as a native aggregate (core/roi_tally):
//   _roi_scan(task columns..., run constants...) -> bytea
// counts every task in its (organization, period[, model or prompt]) group; it has a partial
// form (combine, serialize, deserialize), so PostgreSQL runs it in parallel workers over a
// Parallel Seq Scan, each worker tallying its share of the table. No SQL function runs per
// task. Its result (the figures of every group, as bytes) is turned into finished rows, with
// API.md's formulas applied natively (core/roi_figures), by
//   _roi_rows(bytea, the run's organizations, rates, periods, new users, dense) -> celaest._roi_row
// for celaest._roi_rollup (src/sql/55_roi.sql).
//
// The aggregate state is a C++ object owned by the aggregate's memory context: a reset
// callback deletes it when PostgreSQL frees that context (end of the query, or an error).
#include "core/roi_figures.hpp"
#include "core/roi_tally.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/roi/aggregate_glue.hpp"
#include "pg/roi/rows.hpp"
#include "pg/roi/stored_rows.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
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
using celaest::pg::roi::aggregate_context;
using celaest::pg::roi::array_elements;
using celaest::pg::roi::ArrayElements;
using celaest::pg::roi::bytea_datum;
using celaest::pg::roi::owned_by;
using celaest::pg::roi::uuid_bytes;
using celaest::pg::roi::uuid_list;

using celaest::pg::roi::kCostScale;

// The transition state: the run (calendar, organizations, prompts) while tasks are being
// added; a bare tally when it was rebuilt from a worker's bytes or from merges.
// A worker's tally arrives as bytes (deserialize) and is merged from them (combine) without
// being built as a tally of its own first.
struct RoiScanState {
  std::unique_ptr<RoiScan> scan;
  RoiTally merged;
  std::vector<unsigned char> serialized;  // a worker's tally not merged yet
  RoiTally& tally() {
    if (!serialized.empty()) {
      merged.merge_serialized(serialized.data(), serialized.size());
      serialized.clear();
    }
    return scan ? scan->tally() : merged;
  }
};

// A new state owned by `context`: deleted by the context's reset callback.
RoiScanState* new_state(MemoryContext context) { return owned_by(context, new RoiScanState()); }

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
  try {
    if (!right->serialized.empty() && !right->scan)
      left->tally().merge_serialized(right->serialized.data(), right->serialized.size());
    else
      left->tally().merge(right->tally());
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI scan: malformed partial state: ") + e.what());
  }
  return PointerGetDatum(left);
}

CELAEST_FUNCTION(celaest_roi_scan_serialize) {
  auto* state = reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  return bytea_datum(state->tally().serialize());
}

CELAEST_FUNCTION(celaest_roi_scan_deserialize) {
  bytea* in = pg_guarded([&] { return PG_GETARG_BYTEA_PP(0); });
  RoiScanState* state = new_state(CurrentMemoryContext);
  // Checked and merged by the combine function (or tally(), should the state be read first).
  const auto* bytes = reinterpret_cast<const unsigned char*>(VARDATA_ANY(in));
  state->serialized.assign(bytes, bytes + VARSIZE_ANY_EXHDR(in));
  return PointerGetDatum(state);
}

// The figures of every group, as bytes for _roi_rows; NULL when no task counted.
CELAEST_FUNCTION(celaest_roi_scan_final) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  auto* state = reinterpret_cast<RoiScanState*>(PG_GETARG_POINTER(0));
  RoiTally& tally = state->tally();
  // Declared FINALFUNC_MODIFY = READ_WRITE: finishing reorders the kept values.
  return bytea_datum(celaest::core::encode_figures(tally.finish(), tally.minutes_scale()));
}

// _roi_rows(figures bytea, organizations uuid[], reported boolean[], hourly_rates numeric[],
//           timezones text[], default_minutes numeric, period_starts date[], period_ends date[],
//           new_user_orgs int[], new_user_periods int[], new_user_counts bigint[], dense boolean)
//   RETURNS SETOF celaest._roi_row
// The finished rows of a roll-up (core/roi_figures, pg/roi/rows); figures NULL: no task counted.
CELAEST_FUNCTION(celaest_roi_rows) {
  const celaest::pg::roi::RoiRowsInput input = celaest::pg::roi::rows_input(fcinfo);
  celaest::pg::roi::emit_rows(fcinfo, input, celaest::pg::roi::finished_rows(input), nullptr);
  return (Datum)0;
}

// _roi_rows_changed(the arguments of _roi_rows, period_type text) RETURNS SETOF celaest._roi_row
// The rows of _roi_rows that roi_metrics does not already hold as they are (pg/roi/stored_rows:
// read under the caller's rights and compared natively): what _roi_store upserts.
CELAEST_FUNCTION(celaest_roi_rows_changed) {
  if (PG_ARGISNULL(12)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "celaest ROI rows: the period type is NULL");
  const celaest::pg::roi::RoiRowsInput input = celaest::pg::roi::rows_input(fcinfo);
  const std::vector<celaest::core::RoiRow> rows = celaest::pg::roi::finished_rows(input);
  const char* period_type = pg_guarded([&] { return text_to_cstring(PG_GETARG_TEXT_PP(12)); });
  const std::vector<bool> unchanged = celaest::pg::roi::rows_already_stored(input, rows, period_type);
  celaest::pg::roi::emit_rows(fcinfo, input, rows, &unchanged);
  return (Datum)0;
}
