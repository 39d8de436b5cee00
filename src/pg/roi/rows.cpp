#include "pg/roi/rows.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace celaest::pg::roi {

namespace {

// A numeric argument as core's NumericValue: its decimal text read at its own scale (numeric's
// display scale, which its text shows), so that the figures keep numeric's scales.
core::NumericValue numeric_value(Datum datum) {
  const char* text = pg_guarded([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, datum)); });
  const int scale = core::decimal_places(text);
  const auto units = core::parse_scaled_decimal(text, scale);
  if (!units) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI: a rate or minutes value is not a non-negative number");
  return {*units, scale};
}

// metadata_datum's object from Datums.
Datum metadata_object(Datum roi_percent, bool roi_percent_null, Datum cost_ai_exact, Datum hourly_rate, Datum timezone) {
  JsonbParseState* state = nullptr;
  const auto key = [&](const char* name) {
    JsonbValue k;
    k.type = jbvString;
    k.val.string.val = const_cast<char*>(name);
    k.val.string.len = static_cast<int>(std::strlen(name));
    pushJsonbValue(&state, WJB_KEY, &k);
  };
  const auto number = [&](Datum value) {
    JsonbValue v;
    v.type = jbvNumeric;
    v.val.numeric = DatumGetNumeric(value);
    pushJsonbValue(&state, WJB_VALUE, &v);
  };
  pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
  key("roi_percent");
  if (roi_percent_null) {
    JsonbValue v;
    v.type = jbvNull;
    pushJsonbValue(&state, WJB_VALUE, &v);
  } else {
    number(roi_percent);
  }
  key("cost_ai_exact");
  number(cost_ai_exact);
  key("hourly_rate");
  number(hourly_rate);
  key("timezone");
  text* zone = DatumGetTextPP(timezone);
  JsonbValue z;
  z.type = jbvString;
  z.val.string.val = VARDATA_ANY(zone);
  z.val.string.len = static_cast<int>(VARSIZE_ANY_EXHDR(zone));
  pushJsonbValue(&state, WJB_VALUE, &z);
  JsonbValue* object = pushJsonbValue(&state, WJB_END_OBJECT, nullptr);
  return JsonbPGetDatum(JsonbValueToJsonb(object));
}

}  // namespace

// A numeric Datum of core's value (allocated in the current context).
Datum numeric_datum(const core::NumericValue& value) {
  if (value.units >= INT64_MIN && value.units <= INT64_MAX)
    return NumericGetDatum(int64_div_fast_to_numeric(static_cast<int64>(value.units), value.scale));
  const std::string text = core::format_scaled(value.units, value.scale);
  return DirectFunctionCall3(numeric_in, CStringGetDatum(text.c_str()), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

RoiRowsInput rows_input(FunctionCallInfo fcinfo) {
  for (int argument : {1, 2, 3, 4, 5, 6, 7, 11})
    if (PG_ARGISNULL(argument)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "celaest ROI rows: a run constant is NULL");
  RoiRowsInput input;
  if (!PG_ARGISNULL(0)) {
    bytea* in = pg_guarded([&] { return PG_GETARG_BYTEA_PP(0); });
    try {
      input.figures = core::decode_figures(reinterpret_cast<const unsigned char*>(VARDATA_ANY(in)),
                                           VARSIZE_ANY_EXHDR(in), &input.minutes_scale);
    } catch (const std::invalid_argument& e) {
      throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI scan: malformed figures: ") + e.what());
    }
  }
  input.organizations = array_elements(fcinfo, 1, UUIDOID);
  const ArrayElements reported = array_elements(fcinfo, 2, BOOLOID);
  input.rates = array_elements(fcinfo, 3, NUMERICOID);
  input.zones = array_elements(fcinfo, 4, TEXTOID);
  input.period_starts = array_elements(fcinfo, 6, DATEOID);
  input.period_ends = array_elements(fcinfo, 7, DATEOID);
  const ArrayElements new_user_orgs = array_elements(fcinfo, 8, INT4OID);
  const ArrayElements new_user_periods = array_elements(fcinfo, 9, INT4OID);
  const ArrayElements new_user_counts = array_elements(fcinfo, 10, INT8OID);
  const int n = input.organizations.count;
  if (reported.count != n || input.rates.count != n || input.zones.count != n ||
      input.period_ends.count != input.period_starts.count ||
      new_user_periods.count != new_user_orgs.count || new_user_counts.count != new_user_orgs.count)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI rows: inconsistent run constants");

  core::RoiRates& run = input.run;
  run.periods = static_cast<std::size_t>(input.period_starts.count);
  run.dense = PG_GETARG_BOOL(11);
  run.default_manual_minutes = numeric_value(PG_GETARG_DATUM(5));
  for (int i = 0; i < n; ++i) {
    if (reported.nulls[i] || input.rates.nulls[i] || input.zones.nulls[i])
      throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "celaest ROI rows: an organization's rate, zone or flag is NULL");
    run.reported.push_back(DatumGetBool(reported.values[i]));
    run.hourly_rate.push_back(numeric_value(input.rates.values[i]));
  }
  if (new_user_orgs.count > 0) run.new_users.assign(static_cast<std::size_t>(n) * run.periods, 0);
  for (int i = 0; i < new_user_orgs.count; ++i) {
    if (new_user_orgs.nulls[i] || new_user_periods.nulls[i] || new_user_counts.nulls[i]) continue;
    const int organization = DatumGetInt32(new_user_orgs.values[i]) - 1;  // 1-based
    const int period = DatumGetInt32(new_user_periods.values[i]) - 1;
    if (organization < 0 || organization >= n || period < 0 || static_cast<std::size_t>(period) >= run.periods)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI rows: new users of an organization or period not in the run");
    run.new_users[static_cast<std::size_t>(organization) * run.periods + period] += DatumGetInt64(new_user_counts.values[i]);
  }

  return input;
}

std::vector<core::RoiRow> finished_rows(const RoiRowsInput& input) {
  std::vector<core::RoiRow> rows;
  try {
    rows = core::finish_roi_rows(input.figures, input.minutes_scale, input.run);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI rows: ") + e.what());
  } catch (const std::overflow_error& e) {
    throw Error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, std::string("celaest ROI rows: ") + e.what());
  }

  return rows;
}

Datum metadata_datum(const core::RoiRow& row, const RoiRowsInput& input) {
  const Datum roi_percent = row.roi_percent ? numeric_datum(*row.roi_percent) : (Datum)0;
  return metadata_object(roi_percent, !row.roi_percent,
                         NumericGetDatum(int64_div_fast_to_numeric(row.cost_ai_exact_micros, kCostScale)),
                         input.rates.values[row.organization], input.zones.values[row.organization]);
}

void emit_rows(FunctionCallInfo fcinfo, const RoiRowsInput& input, const std::vector<core::RoiRow>& rows,
               const std::vector<bool>* unchanged) {
  pg_guarded([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  constexpr int kColumns = 24;  // celaest._roi_row
  if (result->setDesc->natts != kColumns)
    throw Error(ERRCODE_DATATYPE_MISMATCH, "celaest ROI rows: celaest._roi_row does not have the expected columns");
  // Each row's Datums go into the tuplestore, then the per-row memory is reset.
  MemoryContext row_context = pg_guarded([&] {
    return AllocSetContextCreate(CurrentMemoryContext, "celaest ROI rows", ALLOCSET_SMALL_SIZES);
  });
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (unchanged != nullptr && (*unchanged)[i]) continue;
    const core::RoiRow& r = rows[i];
    pg_guarded([&] {
      MemoryContext caller = MemoryContextSwitchTo(row_context);
      Datum values[kColumns];
      bool nulls[kColumns] = {false};
      const auto set_optional_int4 = [&](int column, const std::optional<std::int32_t>& value) {
        nulls[column] = !value;
        values[column] = Int32GetDatum(value.value_or(0));
      };
      const auto set_optional_numeric = [&](int column, const std::optional<core::NumericValue>& value) {
        nulls[column] = !value;
        values[column] = value ? numeric_datum(*value) : (Datum)0;
      };
      values[0] = input.organizations.values[r.organization];
      values[1] = input.period_starts.values[r.period];
      values[2] = input.period_ends.values[r.period];
      if (r.has_dimension) {
        auto* dimension = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        std::memcpy(dimension->data, r.dimension.data(), r.dimension.size());
        values[3] = UUIDPGetDatum(dimension);
      } else {
        nulls[3] = true;
        values[3] = (Datum)0;
      }
      values[4] = Int64GetDatum(r.tasks_completed);
      values[5] = Int64GetDatum(r.tasks_failed);
      set_optional_numeric(6, r.success_rate);
      values[7] = Int64GetDatum(r.manual_equivalent_minutes);
      values[8] = Int64GetDatum(r.time_saved_minutes);
      values[9] = numeric_datum(r.cost_ai);
      values[10] = numeric_datum(r.cost_manual_equivalent);
      values[11] = numeric_datum(r.money_saved);
      values[12] = NumericGetDatum(int64_div_fast_to_numeric(r.cost_ai_exact_micros, kCostScale));
      set_optional_numeric(13, r.roi_percent);
      values[14] = Int64GetDatum(r.total_tokens);
      set_optional_int4(15, r.avg_tokens_per_task);
      set_optional_int4(16, r.avg_execution_ms);
      set_optional_int4(17, r.p95_execution_ms);
      set_optional_int4(18, r.p99_execution_ms);
      if (r.active_users > INT32_MAX || r.new_users > INT32_MAX)
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("integer out of range")));
      values[19] = Int32GetDatum(static_cast<int32>(r.active_users));
      values[20] = Int32GetDatum(static_cast<int32>(r.new_users));
      values[21] = input.rates.values[r.organization];
      values[22] = input.zones.values[r.organization];
      values[23] = metadata_object(values[13], nulls[13], values[12], values[21], values[22]);
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
      MemoryContextSwitchTo(caller);
      MemoryContextReset(row_context);
    });
  }
}

}  // namespace celaest::pg::roi
