#include "pg/identity/profile_row.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace celaest::pg {

namespace {

// Where the columns are: looked up once, forgotten on any invalidation of either table or
// index (ALTER, DROP, REINDEX CONCURRENTLY, a re-created extension).
struct ProfileCatalog {
  bool loaded = false;
  Oid profiles = InvalidOid, profiles_key = InvalidOid;
  Oid organizations = InvalidOid, organizations_key = InvalidOid;
  AttrNumber id = 0, organization_id = 0, deleted_at = 0, role = 0, scopes = 0;
  AttrNumber organization_key_column = 0, organization_deleted_at = 0;
};

ProfileCatalog catalog;
bool callback_registered = false;

void forget_catalog(Datum, Oid relation) {
  if (relation == InvalidOid || relation == catalog.profiles || relation == catalog.profiles_key ||
      relation == catalog.organizations || relation == catalog.organizations_key)
    catalog.loaded = false;
}

// Plain C on PostgreSQL's side (runs inside pg_guarded): true when every name resolved.
bool load_catalog() {
  if (!callback_registered) {
    CacheRegisterRelcacheCallback(forget_catalog, (Datum)0);
    callback_registered = true;
  }
  ProfileCatalog found;
  Oid schema = get_namespace_oid("celaest", true);
  if (!OidIsValid(schema)) return false;
  found.profiles = get_relname_relid("users_profile", schema);
  found.profiles_key = get_relname_relid("users_profile_pkey", schema);
  found.organizations = get_relname_relid("organizations", schema);
  found.organizations_key = get_relname_relid("organizations_pkey", schema);
  for (Oid oid : {found.profiles, found.profiles_key, found.organizations, found.organizations_key})
    if (!OidIsValid(oid)) return false;
  found.id = get_attnum(found.profiles, "id");
  found.organization_id = get_attnum(found.profiles, "organization_id");
  found.deleted_at = get_attnum(found.profiles, "deleted_at");
  found.role = get_attnum(found.profiles, "role");
  found.scopes = get_attnum(found.profiles, "scopes");
  found.organization_key_column = get_attnum(found.organizations, "id");
  found.organization_deleted_at = get_attnum(found.organizations, "deleted_at");
  for (AttrNumber number : {found.id, found.organization_id, found.deleted_at, found.role, found.scopes,
                            found.organization_key_column, found.organization_deleted_at})
    if (number == InvalidAttrNumber) return false;
  if (get_atttype(found.profiles, found.scopes) != JSONBOID) return false;
  found.loaded = true;
  catalog = found;
  return true;
}

bool readable(Oid relation) {
  // The query would apply row-level security, or fail for want of privilege: let it.
  return check_enable_rls(relation, InvalidOid, true) != RLS_ENABLED &&
         pg_class_aclcheck(relation, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

// POD result of the guarded part (a longjmp may not skip a destructor).
struct RawProfile {
  bool allowed;
  bool live;
  bool has_organization;
  pg_uuid_t organization;
  bool organization_deleted;
  char role[NAMEDATALEN];
  bool scope_ai_run;
};

// The first visible row of `relation` whose `column` (its primary key, through `index`) is `id`.
template <typename Visit>
void read_by_key(Relation relation, Oid index, AttrNumber column, Datum id, Snapshot snapshot, Visit visit) {
  ScanKeyData key;
  ScanKeyInit(&key, column, BTEqualStrategyNumber, F_UUID_EQ, id);
  SysScanDesc scan = systable_beginscan(relation, index, true, snapshot, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) visit(tuple, RelationGetDescr(relation));
  systable_endscan(scan);
}

RawProfile read_raw(const char* user_id) {
  RawProfile result{};
  if (!catalog.loaded && !load_catalog()) return result;
  if (!readable(catalog.profiles) || !readable(catalog.organizations)) return result;

  Datum id = DirectFunctionCall1(uuid_in, CStringGetDatum(user_id));
  Relation profiles = table_open(catalog.profiles, AccessShareLock);
  Relation organizations = table_open(catalog.organizations, AccessShareLock);
  if (!catalog.loaded) {
    // Taking the locks processed an invalidation: look the names up again.
    table_close(organizations, AccessShareLock);
    table_close(profiles, AccessShareLock);
    if (!load_catalog()) return result;
    profiles = table_open(catalog.profiles, AccessShareLock);
    organizations = table_open(catalog.organizations, AccessShareLock);
  }
  // The snapshot SPI gives a query that is not read-only: this command's writes visible, and
  // in READ COMMITTED what has committed until now.
  CommandCounterIncrement();
  Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
  result.allowed = true;
  read_by_key(profiles, catalog.profiles_key, catalog.id, id, snapshot, [&](HeapTuple tuple, TupleDesc descriptor) {
    bool is_null = false;
    heap_getattr(tuple, catalog.deleted_at, descriptor, &is_null);
    if (!is_null) return;  // soft-deleted: acts for nobody
    result.live = true;
    Datum organization = heap_getattr(tuple, catalog.organization_id, descriptor, &is_null);
    if (!is_null) {
      result.has_organization = true;
      std::memcpy(&result.organization, DatumGetUUIDP(organization), sizeof result.organization);
    }
    Datum role = heap_getattr(tuple, catalog.role, descriptor, &is_null);
    if (!is_null) {
      HeapTuple label = SearchSysCache1(ENUMOID, role);
      if (HeapTupleIsValid(label)) {
        strlcpy(result.role, NameStr(reinterpret_cast<Form_pg_enum>(GETSTRUCT(label))->enumlabel), NAMEDATALEN);
        ReleaseSysCache(label);
      }
    }
    Datum scopes = heap_getattr(tuple, catalog.scopes, descriptor, &is_null);
    if (!is_null)
      result.scope_ai_run = DatumGetBool(DirectFunctionCall2(jsonb_exists, scopes, CStringGetTextDatum("ai:run")));
  });
  if (result.has_organization)
    read_by_key(organizations, catalog.organizations_key, catalog.organization_key_column,
                UUIDPGetDatum(&result.organization), snapshot, [&](HeapTuple tuple, TupleDesc descriptor) {
                  bool is_null = false;
                  heap_getattr(tuple, catalog.organization_deleted_at, descriptor, &is_null);
                  result.organization_deleted = !is_null;
                });
  UnregisterSnapshot(snapshot);
  table_close(organizations, AccessShareLock);
  table_close(profiles, AccessShareLock);
  return result;
}

}  // namespace

std::optional<ProfileRow> read_profile_row(const std::string& user_id) {
  const RawProfile raw = pg_guarded([&] { return read_raw(user_id.c_str()); });
  if (!raw.allowed) return std::nullopt;
  ProfileRow row;
  row.live = raw.live;
  if (!raw.live) return row;
  if (raw.has_organization) {
    char* text = pg_guarded([&] {
      return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(const_cast<pg_uuid_t*>(&raw.organization))));
    });
    row.organization_id = std::string(text);
    pg_guarded([&] { pfree(text); });
  }
  row.organization_deleted = raw.organization_deleted;
  row.role = raw.role;
  row.scope_ai_run = raw.scope_ai_run;
  return row;
}

}  // namespace celaest::pg
