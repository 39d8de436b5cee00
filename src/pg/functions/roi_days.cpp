// The stored ROI days (celaest._roi_days, src/sql/55_roi.sql): each organization's local day
// tallied once and kept as bytes, so that aggregate_roi merges stored days into its periods
// instead of reading their tasks again.
//   _roi_day_states(tally bytea) -> (organization_n, day_n, state)
//       the day groups of a scan by local day (_roi_scan_days), one state each;
//   _roi_fold(organization_n, day_n, state, day_period int[], organizations, periods) -> bytea
//       merges day states into their periods; the figures, as _roi_scan returns them;
//   _roi_mark_stale()  (row trigger on processed_tasks)
//       notes that a task of a day that may be stored was written (celaest._roi_stale).
#include "core/roi_tally.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/roi/aggregate_glue.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using celaest::core::RoiTally;
using celaest::pg::Error;
using celaest::pg::pg_guarded;
namespace roi = celaest::pg::roi;

const unsigned char* bytea_bytes(Datum datum, std::size_t* size) {
  bytea* value = pg_guarded([&] { return DatumGetByteaPP(datum); });
  *size = VARSIZE_ANY_EXHDR(value);
  return reinterpret_cast<const unsigned char*>(VARDATA_ANY(value));
}

}  // namespace

// _roi_day_states(tally bytea) RETURNS TABLE (organization_n integer, day_n integer, state bytea)
// The groups of a scan by local day: organization and day as 1-based positions in the run's
// arrays, each group's tally as a state for celaest._roi_days. No rows for a NULL tally.
CELAEST_FUNCTION(celaest_roi_day_states) {
  pg_guarded([&] { InitMaterializedSRF(fcinfo, 0); });
  if (PG_ARGISNULL(0)) return (Datum)0;
  std::size_t size = 0;
  const unsigned char* bytes = bytea_bytes(PG_GETARG_DATUM(0), &size);
  std::vector<RoiTally::GroupState> states;
  try {
    states = RoiTally::deserialize(bytes, size).group_states();
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI days: malformed tally: ") + e.what());
  }
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (result->setDesc->natts != 3)
    throw Error(ERRCODE_DATATYPE_MISMATCH, "celaest ROI days: _roi_day_states must return three columns");
  for (const RoiTally::GroupState& state : states) {
    pg_guarded([&] {
      Datum values[3] = {Int32GetDatum(static_cast<int32>(state.organization + 1)),
                         Int32GetDatum(static_cast<int32>(state.period + 1)), roi::bytea_datum(state.bytes)};
      bool nulls[3] = {false, false, false};
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
      pfree(DatumGetPointer(values[2]));
    });
  }
  return (Datum)0;
}

namespace {

// _roi_fold's state: the periods' tally and where each local day of the run goes.
struct RoiFoldState {
  RoiTally tally;
  std::vector<std::int32_t> period_of_day;  // -1: the day is in no period of the run
  std::uint32_t organizations = 0;
};

}  // namespace

// _roi_fold(organization_n integer, day_n integer, state bytea, day_period integer[],
//           organizations integer, periods integer): merges a day's state into its period.
// Rows with a NULL state (a stored day without tasks) count nothing.
CELAEST_FUNCTION(celaest_roi_fold_step) {
  auto* state = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RoiFoldState*>(PG_GETARG_POINTER(0));
  if (state == nullptr) {
    state = roi::owned_by(roi::aggregate_context(fcinfo), new RoiFoldState());
    const roi::ArrayElements days = roi::array_elements(fcinfo, 4, INT4OID);
    for (int i = 0; i < days.count; ++i)
      state->period_of_day.push_back(days.nulls[i] ? -1 : DatumGetInt32(days.values[i]) - 1);  // 1-based
    if (PG_ARGISNULL(5) || PG_ARGISNULL(6) || PG_GETARG_INT32(5) < 0 || PG_GETARG_INT32(6) < 0)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI fold: the run's sizes are missing");
    state->organizations = static_cast<std::uint32_t>(PG_GETARG_INT32(5));
    state->tally.index_densely(state->organizations, static_cast<std::size_t>(PG_GETARG_INT32(6)));
  }
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3)) return PointerGetDatum(state);
  const int organization = PG_GETARG_INT32(1) - 1;
  const int day = PG_GETARG_INT32(2) - 1;
  if (organization < 0 || static_cast<std::uint32_t>(organization) >= state->organizations || day < 0 ||
      static_cast<std::size_t>(day) >= state->period_of_day.size())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI fold: a day state outside the run");
  const std::int32_t period = state->period_of_day[static_cast<std::size_t>(day)];
  if (period < 0) return PointerGetDatum(state);
  std::size_t size = 0;
  const unsigned char* bytes = bytea_bytes(PG_GETARG_DATUM(3), &size);
  try {
    state->tally.merge_group_state(static_cast<std::uint32_t>(organization), static_cast<std::uint32_t>(period),
                                   bytes, size);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI fold: malformed day state: ") + e.what(),
                "celaest._roi_days holds a state this version did not write; DELETE FROM celaest._roi_days "
                "makes the next run read the tasks again.");
  }
  return PointerGetDatum(state);
}

// The figures of every period with a counted day, as _roi_scan returns them (for _roi_rows);
// NULL when no day counted.
CELAEST_FUNCTION(celaest_roi_fold_final) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  auto* state = reinterpret_cast<RoiFoldState*>(PG_GETARG_POINTER(0));
  // FINALFUNC_MODIFY = READ_WRITE: finishing reorders the kept values.
  return roi::bytea_datum(celaest::core::encode_figures(state->tally.finish(), state->tally.minutes_scale()));
}

namespace {

// The (organization, UTC day) pairs this transaction has noted already, so that a statement
// writing many old tasks of one organization and day inserts one row into _roi_stale, not one
// per task. Forgotten at the end of the transaction and when a subtransaction aborts (its rows
// in _roi_stale are gone with it).
struct StaleKey {
  std::uint64_t high;
  std::uint64_t low;
  std::int32_t day;
  bool operator==(const StaleKey& other) const noexcept {
    return high == other.high && low == other.low && day == other.day;
  }
};
struct StaleKeyHash {
  std::size_t operator()(const StaleKey& key) const noexcept {
    return celaest::core::mix64(key.high ^ celaest::core::mix64(key.low ^ static_cast<std::uint64_t>(key.day)));
  }
};
std::unordered_set<StaleKey, StaleKeyHash>& noted() {
  static std::unordered_set<StaleKey, StaleKeyHash> keys;
  return keys;
}

void forget_at_transaction_end(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
      event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
    noted().clear();
}

void forget_at_subtransaction_abort(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) noted().clear();
}

void note_stale(const pg_uuid_t* organization, TimestampTz created_at) {
  static bool callbacks = false;
  if (!callbacks) {
    pg_guarded([] {
      RegisterXactCallback(forget_at_transaction_end, nullptr);
      RegisterSubXactCallback(forget_at_subtransaction_abort, nullptr);
    });
    callbacks = true;
  }
  // The UTC day as a date: both count from 2000-01-01 (floor, for instants before it too).
  constexpr std::int64_t kDay = USECS_PER_DAY;
  const std::int64_t day = created_at >= 0 ? created_at / kDay : -((-created_at + kDay - 1) / kDay);
  StaleKey key{};
  std::memcpy(&key.high, organization->data, sizeof key.high);
  std::memcpy(&key.low, organization->data + sizeof key.high, sizeof key.low);
  key.day = static_cast<std::int32_t>(day);
  if (!noted().insert(key).second) return;
  try {
    pg_guarded([&] {
      static SPIPlanPtr plan = nullptr;
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "celaest: SPI_connect failed");
      if (plan == nullptr) {
        Oid types[2] = {UUIDOID, DATEOID};
        SPIPlanPtr prepared = SPI_prepare(
            "INSERT INTO celaest._roi_stale (organization_id, utc_day) VALUES ($1, $2)", 2, types);
        if (prepared == nullptr || SPI_keepplan(prepared) != 0) elog(ERROR, "celaest: cannot prepare the ROI mark");
        plan = prepared;
      }
      Datum values[2] = {UUIDPGetDatum(const_cast<pg_uuid_t*>(organization)), DateADTGetDatum(static_cast<DateADT>(day))};
      if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "celaest: cannot note a stale ROI day");
      SPI_finish();
    });
  } catch (...) {
    noted().erase(key);
    throw;
  }
}

void note_row(TriggerData* data, HeapTuple tuple) {
  if (tuple == nullptr) return;
  TupleDesc desc = data->tg_relation->rd_att;
  const int organization_column = pg_guarded([&] { return SPI_fnumber(desc, "organization_id"); });
  const int created_column = pg_guarded([&] { return SPI_fnumber(desc, "created_at"); });
  if (organization_column <= 0 || created_column <= 0)
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "celaest._roi_mark_stale() needs organization_id and created_at columns");
  bool organization_null = false;
  bool created_null = false;
  const Datum organization = heap_getattr(tuple, organization_column, desc, &organization_null);
  const Datum created = heap_getattr(tuple, created_column, desc, &created_null);
  if (organization_null || created_null) return;
  note_stale(DatumGetUUIDP(organization), DatumGetTimestampTz(created));
}

}  // namespace

// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on processed_tasks, with a WHEN clause that
// lets only old tasks through (src/sql/55_roi.sql): notes the organization and UTC day of the
// row's old and new versions in celaest._roi_stale, once per transaction.
CELAEST_FUNCTION(celaest_roi_mark_stale) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._roi_mark_stale() must be called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_FOR_ROW(data->tg_event) || !TRIGGER_FIRED_AFTER(data->tg_event))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._roi_mark_stale() must fire AFTER, FOR EACH ROW");
  note_row(data, data->tg_trigtuple);
  if (TRIGGER_FIRED_BY_UPDATE(data->tg_event)) note_row(data, data->tg_newtuple);
  return PointerGetDatum(nullptr);
}

// _roi_forget_noted(): after a run consumed _roi_stale's rows in this transaction, a later
// write of the same organization and day must note it again.
CELAEST_FUNCTION(celaest_roi_forget_noted) {
  noted().clear();
  PG_RETURN_VOID();
}
