#include "pg/roi/stored_rows.hpp"

#include "core/decimal.hpp"
#include "core/index_table.hpp"
#include "core/roi_tally.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/uuid.h"
}

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

namespace celaest::pg::roi {

namespace {

constexpr const char* kStoredRows = R"SQL(
SELECT m.organization_id, m.period_start, m.period_end, m.tasks_completed, m.tasks_failed, m.success_rate,
       m.time_saved_minutes, m.manual_equivalent_minutes, m.cost_ai, m.cost_manual_equivalent, m.money_saved,
       m.total_tokens, m.avg_tokens_per_task, m.avg_execution_time_ms, m.p95_execution_time_ms,
       m.p99_execution_time_ms, m.active_users_count, m.new_users_count, m.metadata
  FROM celaest.roi_metrics AS m
 WHERE m.period_type = $1 AND m.period_start BETWEEN $2 AND $3
)SQL";
constexpr int kFetch = 4096;

// One stored row's columns, deformed once (attribute numbers of kStoredRows, 1-based).
constexpr int kColumns = 19;
struct Columns {
  Datum values[kColumns];
  bool nulls[kColumns];
  Datum get(int column, bool* null) const {
    *null = nulls[column - 1];
    return values[column - 1];
  }
};

bool same_int8(const Columns& c, int column, std::int64_t expected) {
  bool null = false;
  const Datum value = c.get(column, &null);
  return !null && DatumGetInt64(value) == expected;
}

bool same_int4(const Columns& c, int column, const std::optional<std::int64_t>& expected) {
  bool null = false;
  const Datum value = c.get(column, &null);
  if (null || !expected) return null && !expected;
  return DatumGetInt32(value) == *expected;
}

// numeric equality (as = sees it): the stored value at the expected scale is the expected one.
bool numeric_equals(struct varlena* stored, const core::NumericValue& expected) {
  if (VARATT_IS_EXTENDED(stored)) stored = pg_detoast_datum_packed(stored);
  const auto units = core::numeric_to_scaled(reinterpret_cast<const unsigned char*>(VARDATA_ANY(stored)),
                                             VARSIZE_ANY_EXHDR(stored), expected.scale);
  return units && core::Int128{*units} == expected.units;
}

bool same_numeric(const Columns& c, int column, const std::optional<core::NumericValue>& expected) {
  bool null = false;
  const Datum value = c.get(column, &null);
  if (null || !expected) return null && !expected;
  return numeric_equals(reinterpret_cast<struct varlena*>(DatumGetPointer(value)), *expected);
}

std::optional<std::int64_t> widened(const std::optional<std::int32_t>& value) {
  if (!value) return std::nullopt;
  return *value;
}

bool same_row(const Columns& c, const core::RoiRow& r, const RoiRowsInput& input) {
  bool null = false;
  const Datum end = c.get(3, &null);
  if (null || DatumGetDateADT(end) != DatumGetDateADT(input.period_ends.values[r.period])) return false;
  if (!same_int8(c, 4, r.tasks_completed) || !same_int8(c, 5, r.tasks_failed) ||
      !same_numeric(c, 6, r.success_rate) || !same_int8(c, 7, r.time_saved_minutes) ||
      !same_int8(c, 8, r.manual_equivalent_minutes) || !same_numeric(c, 9, r.cost_ai) ||
      !same_numeric(c, 10, r.cost_manual_equivalent) || !same_numeric(c, 11, r.money_saved) ||
      !same_int8(c, 12, r.total_tokens) || !same_int4(c, 13, widened(r.avg_tokens_per_task)) ||
      !same_int4(c, 14, widened(r.avg_execution_ms)) || !same_int4(c, 15, widened(r.p95_execution_ms)) ||
      !same_int4(c, 16, widened(r.p99_execution_ms)) || !same_int4(c, 17, r.active_users) ||
      !same_int4(c, 18, r.new_users))
    return false;
  // Our keys in the stored metadata, with these values (other keys are the user's): what
  // `metadata @> our object` tests, looked up key by key instead of building our object.
  const Datum metadata = c.get(19, &null);
  if (null) return false;
  Jsonb* stored = DatumGetJsonbP(metadata);
  if (!JB_ROOT_IS_OBJECT(stored)) return false;
  const auto value_of = [&](const char* key, JsonbValue* out) {
    return getKeyJsonValueFromContainer(&stored->root, key, static_cast<uint32>(std::strlen(key)), out) != nullptr;
  };
  const auto same_number = [&](const char* key, const core::NumericValue& expected) {
    JsonbValue v;
    if (!value_of(key, &v) || v.type != jbvNumeric) return false;
    return numeric_equals(reinterpret_cast<struct varlena*>(v.val.numeric), expected);
  };
  JsonbValue percent;
  if (!value_of("roi_percent", &percent)) return false;
  if (r.roi_percent ? !(percent.type == jbvNumeric &&
                        numeric_equals(reinterpret_cast<struct varlena*>(percent.val.numeric), *r.roi_percent))
                    : percent.type != jbvNull)
    return false;
  if (!same_number("cost_ai_exact", core::NumericValue{r.cost_ai_exact_micros, kCostScale})) return false;
  if (!same_number("hourly_rate", input.run.hourly_rate[r.organization])) return false;
  JsonbValue zone;
  if (!value_of("timezone", &zone) || zone.type != jbvString) return false;
  text* expected_zone = DatumGetTextPP(input.zones.values[r.organization]);
  return static_cast<std::size_t>(zone.val.string.len) == VARSIZE_ANY_EXHDR(expected_zone) &&
         std::memcmp(zone.val.string.val, VARDATA_ANY(expected_zone), zone.val.string.len) == 0;
}

}  // namespace

std::vector<bool> rows_already_stored(const RoiRowsInput& input, const std::vector<core::RoiRow>& rows,
                                      const char* period_type) {
  std::vector<bool> unchanged(rows.size(), false);
  if (rows.empty() || input.period_starts.count == 0) return unchanged;
  // Where each (organization, period) row is.
  const std::size_t periods = static_cast<std::size_t>(input.period_starts.count);
  core::IndexTable<core::UuidKey, core::UuidKeyHash> organizations;
  for (int i = 0; i < input.organizations.count; ++i)
    organizations.find_or_add(core::uuid_key(uuid_bytes(input.organizations.values[i])));
  std::vector<std::int64_t> row_of(static_cast<std::size_t>(input.organizations.count) * periods, -1);
  for (std::size_t i = 0; i < rows.size(); ++i) row_of[rows[i].organization * periods + rows[i].period] = i;
  std::vector<DateADT> starts;
  for (int i = 0; i < input.period_starts.count; ++i) starts.push_back(DatumGetDateADT(input.period_starts.values[i]));
  if (!std::is_sorted(starts.begin(), starts.end())) return unchanged;  // never: periods come in order

  pg_guarded([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "celaest: SPI_connect failed");
    Oid types[3] = {TEXTOID, DATEOID, DATEOID};
    Datum args[3] = {CStringGetTextDatum(period_type), DateADTGetDatum(starts.front()), DateADTGetDatum(starts.back())};
    Portal portal = SPI_cursor_open_with_args(nullptr, kStoredRows, 3, types, args, nullptr, true, 0);
    MemoryContext per_batch = AllocSetContextCreate(CurrentMemoryContext, "celaest ROI stored rows",
                                                    ALLOCSET_DEFAULT_SIZES);
    for (;;) {
      SPI_cursor_fetch(portal, true, kFetch);
      if (SPI_processed == 0) break;
      if (SPI_tuptable->tupdesc->natts != kColumns) elog(ERROR, "celaest: roi_metrics read with unexpected columns");
      MemoryContext caller = MemoryContextSwitchTo(per_batch);
      for (uint64 t = 0; t < SPI_processed; ++t) {
        Columns c;
        heap_deform_tuple(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, c.values, c.nulls);
        bool null_org = false;
        bool null_start = false;
        const Datum org = c.get(1, &null_org);
        const Datum start = c.get(2, &null_start);
        if (null_org || null_start) continue;
        core::UuidBytes org_bytes;
        std::memcpy(org_bytes.data(), DatumGetUUIDP(org)->data, org_bytes.size());
        const auto o = organizations.find(core::uuid_key(org_bytes));
        const auto p = std::lower_bound(starts.begin(), starts.end(), DatumGetDateADT(start));
        if (!o || p == starts.end() || *p != DatumGetDateADT(start)) continue;
        const std::int64_t i = row_of[*o * periods + static_cast<std::size_t>(p - starts.begin())];
        if (i >= 0) unchanged[static_cast<std::size_t>(i)] = same_row(c, rows[static_cast<std::size_t>(i)], input);
      }
      MemoryContextSwitchTo(caller);
      MemoryContextReset(per_batch);
      SPI_freetuptable(SPI_tuptable);
    }
    SPI_cursor_close(portal);
    SPI_finish();
  });
  return unchanged;
}

}  // namespace celaest::pg::roi
