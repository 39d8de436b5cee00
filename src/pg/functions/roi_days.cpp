// The stored ROI days (celaest._roi_days, src/sql/55_roi.sql): each organization's local day
// tallied once and kept as bytes, so that aggregate_roi merges stored days into its periods
// instead of reading their tasks again.
//   _roi_day_states(tally bytea, organizations, days) -> (organization_n, day_n, state)
//       the given days of a scan by local day (_roi_scan_days), one state each (NULL: no task);
//   _roi_fold(a _roi_days row, the run's constants, the notes) -> bytea
//       step 1: the stored days counted into their periods; the run as bytes;
//   _roi_fold_missing(run) -> (organization_n, day_n)
//       the days no stored day counted for (to read from the tasks);
//   _roi_fold_finish(run, the missing days' tally) -> bytea
//       step 2: those days counted too; the figures, as _roi_scan returns them;
#include "core/roi_fold.hpp"
#include "core/roi_tally.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/roi/aggregate_glue.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
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

// _roi_day_states(tally bytea, organization_n integer[], day_n integer[])
//   RETURNS TABLE (organization_n integer, day_n integer, state bytea)
// One row per given (organization, day) pair (1-based positions in the run's arrays): the day's
// group of a scan by local day (_roi_scan_days) as the state celaest._roi_days keeps, NULL when
// the scan found no task that day (or the tally is NULL).
CELAEST_FUNCTION(celaest_roi_day_states) {
  pg_guarded([&] { InitMaterializedSRF(fcinfo, 0); });
  const roi::ArrayElements organizations = roi::array_elements(fcinfo, 1, INT4OID);
  const roi::ArrayElements days = roi::array_elements(fcinfo, 2, INT4OID);
  if (organizations.count != days.count)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI days: one day per organization");
  std::vector<RoiTally::GroupState> states;
  if (!PG_ARGISNULL(0)) {
    std::size_t size = 0;
    const unsigned char* bytes = bytea_bytes(PG_GETARG_DATUM(0), &size);
    try {
      states = RoiTally::deserialize(bytes, size).group_states();
    } catch (const std::invalid_argument& e) {
      throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI days: malformed tally: ") + e.what());
    }
  }
  std::unordered_map<std::uint64_t, std::size_t> state_of;  // (organization << 32 | day), 0-based
  for (std::size_t i = 0; i < states.size(); ++i)
    state_of.emplace(std::uint64_t{states[i].organization} << 32 | states[i].period, i);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (result->setDesc->natts != 3)
    throw Error(ERRCODE_DATATYPE_MISMATCH, "celaest ROI days: _roi_day_states must return three columns");
  for (int i = 0; i < organizations.count; ++i) {
    if (organizations.nulls[i] || days.nulls[i] || DatumGetInt32(organizations.values[i]) < 1 ||
        DatumGetInt32(days.values[i]) < 1)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI days: a position below 1");
    const auto o = static_cast<std::uint64_t>(DatumGetInt32(organizations.values[i]) - 1);
    const auto d = static_cast<std::uint64_t>(DatumGetInt32(days.values[i]) - 1);
    const auto found = state_of.find(o << 32 | d);
    pg_guarded([&] {
      Datum values[3] = {organizations.values[i], days.values[i], (Datum)0};
      bool nulls[3] = {false, false, found == state_of.end()};
      if (!nulls[2]) values[2] = roi::bytea_datum(states[found->second].bytes);
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
      if (!nulls[2]) pfree(DatumGetPointer(values[2]));
    });
  }
  return (Datum)0;
}

namespace {

std::string text_string(Datum datum) {
  text* value = pg_guarded([&] { return DatumGetTextPP(datum); });
  return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

// The run's constants, from _roi_fold's arguments 5.. (see 55_roi.sql).
std::unique_ptr<celaest::core::RoiFold> fold_from_arguments(FunctionCallInfo fcinfo) {
  for (int argument : {5, 6, 7, 8, 9})
    if (PG_ARGISNULL(argument)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "celaest ROI fold: a run constant is NULL");
  const roi::ArrayElements organizations = roi::array_elements(fcinfo, 5, UUIDOID);
  const roi::ArrayElements zones = roi::array_elements(fcinfo, 6, TEXTOID);
  const DateADT first_day = PG_GETARG_DATEADT(7);
  const roi::ArrayElements days = roi::array_elements(fcinfo, 8, INT4OID);
  std::vector<std::string> zone_names;
  for (int i = 0; i < zones.count; ++i)
    zone_names.push_back(zones.nulls[i] ? std::string() : text_string(zones.values[i]));
  std::vector<std::int32_t> period_of_day;
  for (int i = 0; i < days.count; ++i)
    period_of_day.push_back(days.nulls[i] ? -1 : DatumGetInt32(days.values[i]) - 1);  // 1-based
  const int periods = PG_GETARG_INT32(9);
  if (periods < 0) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI fold: a negative number of periods");
  // The notes of writes not consumed by this run: organization (NULL: all), the local days
  // they fall on, first and last (NULL: all).
  const roi::ArrayElements note_organizations = roi::array_elements(fcinfo, 10, UUIDOID);
  const roi::ArrayElements note_firsts = roi::array_elements(fcinfo, 11, DATEOID);
  const roi::ArrayElements note_lasts = roi::array_elements(fcinfo, 12, DATEOID);
  if (note_organizations.count != note_firsts.count || note_organizations.count != note_lasts.count)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "celaest ROI fold: one first and last day per note");
  const std::vector<celaest::core::UuidBytes> organization_ids = roi::uuid_list(organizations);
  celaest::core::IndexTable<celaest::core::UuidKey, celaest::core::UuidKeyHash> positions;
  for (const auto& id : organization_ids) positions.find_or_add(celaest::core::uuid_key(id));
  std::vector<celaest::core::RoiStaleNote> notes;
  for (int i = 0; i < note_organizations.count; ++i) {
    celaest::core::RoiStaleNote note;
    if (!note_organizations.nulls[i]) {
      const auto position = positions.find(celaest::core::uuid_key(roi::uuid_bytes(note_organizations.values[i])));
      if (!position) continue;  // an organization outside the run
      note.organization = *position;
    }
    if (!note_firsts.nulls[i] && !note_lasts.nulls[i]) {
      note.first_day = static_cast<std::int64_t>(DatumGetDateADT(note_firsts.values[i])) - first_day;
      note.last_day = static_cast<std::int64_t>(DatumGetDateADT(note_lasts.values[i])) - first_day;
    }
    notes.push_back(note);
  }
  try {
    return std::make_unique<celaest::core::RoiFold>(organization_ids, std::move(zone_names), std::move(period_of_day),
                                                    static_cast<std::size_t>(periods), std::move(notes));
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("celaest ROI fold: ") + e.what());
  }
}

celaest::core::RoiFold fold_from_bytes(FunctionCallInfo fcinfo, int argument) {
  std::size_t size = 0;
  const unsigned char* bytes = bytea_bytes(PG_GETARG_DATUM(argument), &size);
  try {
    return celaest::core::RoiFold::deserialize(bytes, size);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI fold: malformed run: ") + e.what());
  }
}

const char* const kCorruptStateHint =
    "celaest._roi_days holds a state this version did not write; DELETE FROM celaest._roi_days "
    "makes the next run read the tasks again.";

}  // namespace

// _roi_fold(organization_id uuid, day date, timezone text, state bytea,    -- a _roi_days row
//           organizations uuid[], zones text[], first_day date, day_period integer[], periods integer,
//           note_organizations uuid[], note_first_days date[], note_last_days date[]) -> bytea
// Step 1 of a run over stored days (core/roi_fold): each stored day of use to the run is counted
// into its period; the result is the run as bytes, for _roi_fold_missing and _roi_fold_finish.
// A row with a NULL organization only starts the run (there may be no stored day at all); a
// NULL state is a stored day without tasks.
CELAEST_FUNCTION(celaest_roi_fold_step) {
  auto* fold = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<celaest::core::RoiFold*>(PG_GETARG_POINTER(0));
  if (fold == nullptr) fold = roi::owned_by(roi::aggregate_context(fcinfo), fold_from_arguments(fcinfo).release());
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3)) return PointerGetDatum(fold);
  text* zone = pg_guarded([&] { return DatumGetTextPP(PG_GETARG_DATUM(3)); });
  const std::int64_t day = static_cast<std::int64_t>(PG_GETARG_DATEADT(2)) - PG_GETARG_DATEADT(7);
  std::size_t size = 0;
  const unsigned char* bytes = PG_ARGISNULL(4) ? nullptr : bytea_bytes(PG_GETARG_DATUM(4), &size);
  try {
    fold->add_stored(roi::uuid_bytes(PG_GETARG_DATUM(1)),
                     std::string_view(VARDATA_ANY(zone), VARSIZE_ANY_EXHDR(zone)), day, bytes, size);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI fold: malformed day state: ") + e.what(),
                kCorruptStateHint);
  }
  return PointerGetDatum(fold);
}

CELAEST_FUNCTION(celaest_roi_fold_final) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  auto* fold = reinterpret_cast<celaest::core::RoiFold*>(PG_GETARG_POINTER(0));
  return roi::bytea_datum(fold->serialize());  // FINALFUNC_MODIFY = READ_WRITE: compacts users
}

// _roi_fold_missing(fold bytea) RETURNS TABLE (organization_n integer, day_n integer)
// The (organization, day) pairs of the run no stored day counted for, 1-based.
CELAEST_FUNCTION(celaest_roi_fold_missing) {
  pg_guarded([&] { InitMaterializedSRF(fcinfo, 0); });
  if (PG_ARGISNULL(0)) return (Datum)0;
  const celaest::core::RoiFold fold = fold_from_bytes(fcinfo, 0);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (result->setDesc->natts != 2)
    throw Error(ERRCODE_DATATYPE_MISMATCH, "celaest ROI fold: _roi_fold_missing must return two columns");
  for (const auto& pair : fold.missing()) {
    pg_guarded([&] {
      Datum values[2] = {Int32GetDatum(static_cast<int32>(pair.organization + 1)),
                         Int32GetDatum(static_cast<int32>(pair.day + 1))};
      bool nulls[2] = {false, false};
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    });
  }
  return (Datum)0;
}

// _roi_fold_finish(fold bytea, fresh_tally bytea) -> bytea
// Step 2: the missing days read from the tasks (their scan by day; NULL: none) counted too; the
// figures of every period with a counted day, as _roi_scan returns them (for _roi_rows).
CELAEST_FUNCTION(celaest_roi_fold_finish) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  celaest::core::RoiFold fold = fold_from_bytes(fcinfo, 0);
  int minutes_scale = 0;
  std::vector<celaest::core::RoiFigures> figures;
  try {
    if (!PG_ARGISNULL(1)) {
      std::size_t size = 0;
      const unsigned char* bytes = bytea_bytes(PG_GETARG_DATUM(1), &size);
      fold.add_fresh(bytes, size);
    }
    figures = fold.finish(&minutes_scale);
  } catch (const std::invalid_argument& e) {
    throw Error(ERRCODE_DATA_CORRUPTED, std::string("celaest ROI fold: ") + e.what());
  } catch (const std::overflow_error& e) {
    throw Error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, std::string("celaest ROI fold: ") + e.what());
  }
  return roi::bytea_datum(celaest::core::encode_figures(figures, minutes_scale));
}
