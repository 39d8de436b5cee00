// The notes of writes to old tasks (celaest._roi_stale, src/sql/55_roi.sql "Stored days"):
//   _roi_mark_stale()  row trigger on processed_tasks (AFTER INSERT/UPDATE/DELETE, its WHEN
//                      clause lets only tasks created more than an hour before through)
// keeps, per transaction, each (organization, UTC day) written and the first and last created_at
// seen there; just before the transaction commits (or is prepared) they become rows of
// _roi_stale, in that transaction: a rolled-back write notes nothing, a committed one cannot be
// missed, and a statement rewriting a whole day of one organization leaves one note. The rows
// are written as the trigger function's owner (the extension's): the writer of a task (a service
// backend, an end user cancelling an old batch) needs no right on the bookkeeping table.
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/function_owner.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

namespace {

using celaest::pg::Error;
using celaest::pg::function_owner;
using celaest::pg::pg_guarded;

struct NoteKey {
  pg_uuid_t organization;
  DateADT utc_day;
  bool operator==(const NoteKey& other) const noexcept {
    return utc_day == other.utc_day && std::memcmp(organization.data, other.organization.data, UUID_LEN) == 0;
  }
};
struct NoteKeyHash {
  std::size_t operator()(const NoteKey& key) const noexcept {
    std::uint64_t high;
    std::uint64_t low;
    std::memcpy(&high, key.organization.data, sizeof high);
    std::memcpy(&low, key.organization.data + sizeof high, sizeof low);
    return std::hash<std::uint64_t>{}(high ^ (low * 0x9E3779B97F4A7C15ULL) ^ static_cast<std::uint64_t>(key.utc_day));
  }
};
struct NoteSpan {
  TimestampTz first;
  TimestampTz last;
};

// This transaction's notes, and who writes them.
std::unordered_map<NoteKey, NoteSpan, NoteKeyHash>& pending() {
  static std::unordered_map<NoteKey, NoteSpan, NoteKeyHash> notes;
  return notes;
}
Oid note_writer = InvalidOid;

DateADT utc_day_of(TimestampTz instant) {
  // Both count from 2000-01-01 (floor, for instants before it too).
  const std::int64_t day = instant >= 0 ? instant / USECS_PER_DAY : -((-instant + USECS_PER_DAY - 1) / USECS_PER_DAY);
  return static_cast<DateADT>(day);
}

// (PostgreSQL zone.)
Datum array_of(const std::vector<Datum>& values, Oid type) {
  int16 length;
  bool by_value;
  char alignment;
  get_typlenbyvalalign(type, &length, &by_value, &alignment);
  return PointerGetDatum(construct_array(const_cast<Datum*>(values.data()), static_cast<int>(values.size()), type,
                                         length, by_value, alignment));
}

// The pending notes as the columns of their rows (built here, in the C++ zone).
struct NoteColumns {
  std::vector<Datum> organizations, days, firsts, lasts;
};
NoteColumns note_columns() {
  NoteColumns columns;
  for (auto& [key, span] : pending()) {
    columns.organizations.push_back(UUIDPGetDatum(const_cast<pg_uuid_t*>(&key.organization)));
    columns.days.push_back(DateADTGetDatum(key.utc_day));
    columns.firsts.push_back(TimestampTzGetDatum(span.first));
    columns.lasts.push_back(TimestampTzGetDatum(span.last));
  }
  return columns;
}

// Writes the notes as their writer (PostgreSQL zone: called inside pg_guarded; no C++ object is
// made here). On an ERROR the transaction aborts, and its abort restores the user. Every name in
// the statement is schema-qualified: it runs as the owner, under the writer's search_path.
void write_notes(const NoteColumns& columns) {
  const Oid schema = get_namespace_oid("celaest", true);
  if (!OidIsValid(schema) || !OidIsValid(get_relname_relid("_roi_stale", schema)))
    return;  // the extension is being dropped in this transaction
  Oid saved_user;
  int saved_context;
  GetUserIdAndSecContext(&saved_user, &saved_context);
  SetUserIdAndSecContext(note_writer, saved_context | SECURITY_LOCAL_USERID_CHANGE);
  PushActiveSnapshot(GetTransactionSnapshot());  // no statement is running any more
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "celaest: SPI_connect failed");
  Oid types[4] = {UUIDARRAYOID, DATEARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
  Datum args[4] = {array_of(columns.organizations, UUIDOID), array_of(columns.days, DATEOID),
                   array_of(columns.firsts, TIMESTAMPTZOID), array_of(columns.lasts, TIMESTAMPTZOID)};
  if (SPI_execute_with_args("INSERT INTO celaest._roi_stale (organization_id, utc_day, first_at, last_at) "
                            "SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
                            "pg_catalog.unnest($3), pg_catalog.unnest($4))",
                            4, types, args, nullptr, false, 0) != SPI_OK_INSERT)
    elog(ERROR, "celaest: cannot write the ROI notes");
  SPI_finish();
  PopActiveSnapshot();
  SetUserIdAndSecContext(saved_user, saved_context);
}

void at_transaction_end(XactEvent event, void*) noexcept {
  if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE) {
    if (pending().empty()) return;
    // An error here aborts the commit: the writes and their notes go together.
    celaest::pg::run_entry_point("ROI notes", celaest::pg::OnFailure::RaiseError, [&] {
      const NoteColumns columns = note_columns();
      pg_guarded([&] { write_notes(columns); });
      pending().clear();
    });
    return;
  }
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
      event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
    pending().clear();
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
  NoteKey key{};
  std::memcpy(key.organization.data, DatumGetUUIDP(organization)->data, UUID_LEN);
  const TimestampTz at = DatumGetTimestampTz(created);
  key.utc_day = utc_day_of(at);
  const auto [entry, added] = pending().try_emplace(key, NoteSpan{at, at});
  if (!added) {
    entry->second.first = std::min(entry->second.first, at);
    entry->second.last = std::max(entry->second.last, at);
  }
}

}  // namespace

// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on processed_tasks, with a WHEN clause that
// lets only old tasks through (src/sql/55_roi.sql): notes the organization and UTC day (and the
// instant) of the row's old and new versions, written to celaest._roi_stale at commit.
CELAEST_FUNCTION(celaest_roi_mark_stale) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._roi_mark_stale() must be called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_FOR_ROW(data->tg_event) || !TRIGGER_FIRED_AFTER(data->tg_event))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._roi_mark_stale() must fire AFTER, FOR EACH ROW");
  static bool registered = false;
  if (!registered) {
    pg_guarded([] { RegisterXactCallback(at_transaction_end, nullptr); });
    registered = true;
  }
  if (pending().empty()) note_writer = function_owner(fcinfo->flinfo->fn_oid);
  note_row(data, data->tg_trigtuple);
  if (TRIGGER_FIRED_BY_UPDATE(data->tg_event)) note_row(data, data->tg_newtuple);
  return PointerGetDatum(nullptr);
}

// _roi_flush_notes(): writes this transaction's pending notes now. A run calls it first: a
// task it wrote earlier in the same transaction, after a run that stored that task's day, must
// be noted before this run decides which stored days to use.
CELAEST_FUNCTION(celaest_roi_flush_notes) {
  if (!pending().empty()) {
    const NoteColumns columns = note_columns();
    pg_guarded([&] { write_notes(columns); });
    pending().clear();
  }
  PG_RETURN_VOID();
}
