#include "pg/licensing/license_row.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/genam.h"
#include "access/xact.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace celaest::pg {

namespace {

// Where the columns are: looked up once, forgotten on any invalidation of the table or its
// index (ALTER, DROP, a re-created extension).
struct LicenseCatalog {
  bool loaded = false;
  Oid relation = InvalidOid;
  Oid primary_key = InvalidOid;
  AttrNumber id = 0, organization_id = 0, status = 0, expires_at = 0, trial_ends_at = 0, current_period_end = 0,
             ai_requests_used = 0;
  Oid trial = InvalidOid, active = InvalidOid, suspended = InvalidOid, expired = InvalidOid;
};

LicenseCatalog catalog;
bool callback_registered = false;

void forget_catalog(Datum, Oid relation) {
  if (relation == InvalidOid || relation == catalog.relation || relation == catalog.primary_key)
    catalog.loaded = false;
}

Oid enum_label(Oid type, const char* label) {
  return GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(type), CStringGetDatum(label));
}

// Plain C on PostgreSQL's side (runs inside pg_guarded): true when every name resolved.
bool load_catalog() {
  if (!callback_registered) {
    CacheRegisterRelcacheCallback(forget_catalog, (Datum)0);
    callback_registered = true;
  }
  LicenseCatalog found;
  Oid schema = get_namespace_oid("celaest", true);
  if (!OidIsValid(schema)) return false;
  found.relation = get_relname_relid("licenses", schema);
  found.primary_key = get_relname_relid("licenses_pkey", schema);
  if (!OidIsValid(found.relation) || !OidIsValid(found.primary_key)) return false;
  found.id = get_attnum(found.relation, "id");
  found.organization_id = get_attnum(found.relation, "organization_id");
  found.status = get_attnum(found.relation, "status");
  found.expires_at = get_attnum(found.relation, "expires_at");
  found.trial_ends_at = get_attnum(found.relation, "trial_ends_at");
  found.current_period_end = get_attnum(found.relation, "current_period_end");
  found.ai_requests_used = get_attnum(found.relation, "ai_requests_used");
  for (AttrNumber number : {found.id, found.organization_id, found.status, found.expires_at, found.trial_ends_at,
                            found.current_period_end, found.ai_requests_used})
    if (number == InvalidAttrNumber) return false;
  Oid status_type = get_atttype(found.relation, found.status);
  found.trial = enum_label(status_type, "trial");
  found.active = enum_label(status_type, "active");
  found.suspended = enum_label(status_type, "suspended");
  found.expired = enum_label(status_type, "expired");
  found.loaded = true;
  catalog = found;
  return true;
}

// POD result of the guarded part (a longjmp may not skip a destructor).
struct RawRead {
  DirectRead outcome;
  LicenseCounters counters;
};

RawRead read_raw(const char* license_id, const char* organization_id, bool latest) {
  if (!catalog.loaded && !load_catalog()) return {DirectRead::NotAllowed, {}};
  if (!ActiveSnapshotSet()) return {DirectRead::NotAllowed, {}};
  // The query would apply row-level security, or fail for want of privilege: let it.
  if (check_enable_rls(catalog.relation, InvalidOid, true) == RLS_ENABLED) return {DirectRead::NotAllowed, {}};
  if (pg_class_aclcheck(catalog.relation, GetUserId(), ACL_SELECT) != ACLCHECK_OK) return {DirectRead::NotAllowed, {}};

  Datum id = DirectFunctionCall1(uuid_in, CStringGetDatum(license_id));
  Datum organization = DirectFunctionCall1(uuid_in, CStringGetDatum(organization_id));
  RawRead result{DirectRead::NotFound, {}};

  Relation relation = table_open(catalog.relation, AccessShareLock);
  if (!catalog.loaded) {
    // Taking the lock processed an invalidation of the table or its index (REINDEX
    // CONCURRENTLY gives the key a new index): look the names up again.
    table_close(relation, AccessShareLock);
    if (!load_catalog()) return {DirectRead::NotAllowed, {}};
    relation = table_open(catalog.relation, AccessShareLock);
  }
  ScanKeyData key;
  ScanKeyInit(&key, catalog.id, BTEqualStrategyNumber, F_UUID_EQ, id);
  Snapshot snapshot = latest ? GetLatestSnapshot() : GetActiveSnapshot();
  SysScanDesc scan = systable_beginscan(relation, catalog.primary_key, true, snapshot, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) {
    TupleDesc descriptor = RelationGetDescr(relation);
    bool is_null = false;
    Datum owner = heap_getattr(tuple, catalog.organization_id, descriptor, &is_null);
    if (!is_null && std::memcmp(DatumGetUUIDP(owner), DatumGetUUIDP(organization), UUID_LEN) == 0) {
      const TimestampTz now = GetCurrentTransactionStartTimestamp();
      auto passed = [&](AttrNumber column) {
        bool null = false;
        Datum value = heap_getattr(tuple, column, descriptor, &null);
        return !null && DatumGetTimestampTz(value) <= now;
      };
      Oid status = DatumGetObjectId(heap_getattr(tuple, catalog.status, descriptor, &is_null));
      LicenseCounters& counters = result.counters;
      counters.status = status == catalog.trial       ? core::LicenseStatus::Trial
                        : status == catalog.active    ? core::LicenseStatus::Active
                        : status == catalog.suspended ? core::LicenseStatus::Suspended
                        : status == catalog.expired   ? core::LicenseStatus::Expired
                                                      : core::LicenseStatus::Cancelled;
      counters.expired = passed(catalog.expires_at);
      counters.trial_ended = passed(catalog.trial_ends_at);
      counters.period_ended = passed(catalog.current_period_end);
      Datum used = heap_getattr(tuple, catalog.ai_requests_used, descriptor, &is_null);
      counters.ai_requests_used = is_null ? 0 : DatumGetInt64(used);
      result.outcome = DirectRead::Found;
    }
  }
  systable_endscan(scan);
  table_close(relation, AccessShareLock);
  return result;
}

}  // namespace

DirectRead read_license_counters(const std::string& license_id, const std::string& organization_id,
                                 RowSnapshot snapshot, LicenseCounters* counters) {
  RawRead read = pg_guarded(
      [&] { return read_raw(license_id.c_str(), organization_id.c_str(), snapshot == RowSnapshot::Latest); });
  if (read.outcome == DirectRead::Found) *counters = read.counters;
  return read.outcome;
}

}  // namespace celaest::pg
