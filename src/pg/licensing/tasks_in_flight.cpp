#include "pg/licensing/tasks_in_flight.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
}

namespace celaest::pg {

namespace {

// The table, its in-flight index and the column the index starts with: looked up once,
// forgotten on any invalidation of either (ALTER, REINDEX CONCURRENTLY, a re-created extension).
struct InFlightCatalog {
  bool loaded = false;
  Oid relation = InvalidOid;
  Oid index = InvalidOid;
  AttrNumber organization_id = InvalidAttrNumber;
};
InFlightCatalog catalog;
bool callback_registered = false;

void forget_catalog(Datum, Oid relation) {
  if (relation == InvalidOid || relation == catalog.relation || relation == catalog.index) catalog.loaded = false;
}

// Plain C on PostgreSQL's side (inside pg_guarded): true when every name resolved.
bool load_catalog() {
  if (!callback_registered) {
    CacheRegisterRelcacheCallback(forget_catalog, (Datum)0);
    callback_registered = true;
  }
  InFlightCatalog found;
  const Oid schema = get_namespace_oid("celaest", true);
  if (!OidIsValid(schema)) return false;
  found.relation = get_relname_relid("processed_tasks", schema);
  found.index = get_relname_relid("processed_tasks_in_flight_idx", schema);
  if (!OidIsValid(found.relation) || !OidIsValid(found.index)) return false;
  found.organization_id = get_attnum(found.relation, "organization_id");
  if (found.organization_id == InvalidAttrNumber) return false;
  found.loaded = true;
  catalog = found;
  return true;
}

// -1: not readable this way.
int64_t count_raw(const char* organization_id) {
  if (!catalog.loaded && !load_catalog()) return -1;
  Relation relation = table_open(catalog.relation, AccessShareLock);
  if (!catalog.loaded) {  // taking the lock processed an invalidation: look the names up again
    table_close(relation, AccessShareLock);
    if (!load_catalog()) return -1;
    relation = table_open(catalog.relation, AccessShareLock);
  }
  ScanKeyData key;
  ScanKeyInit(&key, catalog.organization_id, BTEqualStrategyNumber, F_UUID_EQ,
              DirectFunctionCall1(uuid_in, CStringGetDatum(organization_id)));
  // The index holds only rows processing or retrying (its predicate), so each visible row counts.
  SysScanDesc scan = systable_beginscan(relation, catalog.index, true, GetLatestSnapshot(), 1, &key);
  int64_t count = 0;
  while (HeapTupleIsValid(systable_getnext(scan))) ++count;
  systable_endscan(scan);
  table_close(relation, AccessShareLock);
  return count;
}

}  // namespace

std::optional<int64_t> tasks_in_flight(const std::string& organization_id) {
  const int64_t count = pg_guarded([&] { return count_raw(organization_id.c_str()); });
  if (count < 0) return std::nullopt;
  return count;
}

}  // namespace celaest::pg
