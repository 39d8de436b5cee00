#include "pg/workers/launcher.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/ledger/records.hpp"
#include "pg/workers/registry.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
}

#include <cstdio>
#include <cstring>

namespace celaest::pg::workers {

namespace {

// How long the workers of a database stay off after DROP/ALTER/CREATE … TEMPLATE asked them to
// go (the statement needs a database with no connections), and how long it waits for them.
constexpr long kReleasePauseMs = 10'000;
constexpr long kReleaseWaitMs = 5'000;
// A worker that ended is started again at most this often (a crash loop must not spin).
constexpr long kRestartIntervalMs = 1'000;
constexpr long kLauncherTickMs = 1'000;
constexpr int kMaxListedDatabases = 4096;

// ---------------------------------------------------------------------- which databases

// celaest.databases, else its alias celaest.database; nullptr: every database.
const char* configured_databases() {
  if (settings::worker_databases != nullptr && settings::worker_databases[0] != '\0')
    return settings::worker_databases;
  if (settings::worker_database != nullptr && settings::worker_database[0] != '\0') return settings::worker_database;
  return nullptr;
}

// Whether `name` is served. A malformed list serves nothing (the launcher logs it once).
bool database_served(const char* name) {
  const char* configured = configured_databases();
  if (configured == nullptr) return true;
  char* copy = pstrdup(configured);
  List* names = NIL;
  bool served = false;
  if (SplitIdentifierString(copy, ',', &names)) {
    ListCell* cell;
    foreach (cell, names)
      if (strcmp(static_cast<const char*>(lfirst(cell)), name) == 0) served = true;
  }
  list_free(names);
  pfree(copy);
  return served;
}

struct ListedDatabase {
  Oid oid;
  char name[NAMEDATALEN];
};
ListedDatabase listed[kMaxListedDatabases];
// Every database of the cluster at the last look (served or not), for the spool's sweep; -1:
// more than the array holds (no sweep then).
uint32_t existing[kMaxListedDatabases];
int existing_count = -1;

// The connectable databases the launcher serves (autovacuum's get_database_list, filtered).
int list_served_databases() {
  int count = 0;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  (void)GetTransactionSnapshot();
  Relation relation = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(relation, 0, nullptr);
  HeapTuple tuple;
  existing_count = 0;
  while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)) && count < kMaxListedDatabases) {
    auto* database = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
    if (existing_count >= 0 && existing_count < kMaxListedDatabases)
      existing[existing_count++] = database->oid;
    else
      existing_count = -1;
    if (!database->datallowconn || database->datistemplate || database_is_invalid_form(database)) continue;
    if (!database_served(NameStr(database->datname))) continue;
    listed[count].oid = database->oid;
    strlcpy(listed[count].name, NameStr(database->datname), NAMEDATALEN);
    ++count;
  }
  table_endscan(scan);
  table_close(relation, AccessShareLock);
  CommitTransactionCommand();
  return count;
}

// ---------------------------------------------------------------------- starting workers

BackgroundWorkerHandle* handles[kMaxDatabases][kRoles];
TimestampTz last_start[kMaxDatabases][kRoles];
bool warned_full = false;

BackgroundWorkerHandle* start_worker(Oid database, Role role) {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it, if still wanted
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "celaest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "celaest_database_worker_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "%s", role_name(role));
  snprintf(worker.bgw_type, BGW_MAXLEN, "%s", role_name(role));
  worker.bgw_main_arg = ObjectIdGetDatum(database);
  static_assert(sizeof(int) <= BGW_EXTRALEN, "the role travels in bgw_extra");
  const int role_index = static_cast<int>(role);
  memcpy(worker.bgw_extra, &role_index, sizeof role_index);
  worker.bgw_notify_pid = MyProcPid;  // our latch is set when it starts or stops
  BackgroundWorkerHandle* handle = nullptr;
  MemoryContext previous = MemoryContextSwitchTo(TopMemoryContext);
  const bool registered = RegisterDynamicBackgroundWorker(&worker, &handle);
  MemoryContextSwitchTo(previous);
  if (!registered) {
    ereport(LOG, (errmsg("celaest launcher: no background worker slot left for %s", role_name(role)),
                  errhint("Raise max_worker_processes.")));
    return nullptr;
  }
  return handle;
}

bool running(BackgroundWorkerHandle* handle) {
  if (handle == nullptr) return false;
  pid_t pid = 0;
  const BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);
  return status == BGWH_STARTED || status == BGWH_NOT_YET_STARTED;
}

void forget(int slot, int role) {
  if (handles[slot][role] != nullptr) {
    if (running(handles[slot][role])) TerminateBackgroundWorker(handles[slot][role]);
    pfree(handles[slot][role]);
    handles[slot][role] = nullptr;
  }
}

// One look at the databases: new ones get a slot, gone ones lose theirs, every served database
// with the extension has its workers running.
void reconcile() {
  const int count = list_served_databases();
  bool seen[kMaxDatabases] = {};
  for (int i = 0; i < count; ++i) {
    const int slot = slot_for(listed[i].oid, listed[i].name);
    if (slot >= 0) {
      seen[slot] = true;
    } else if (!warned_full) {
      ereport(WARNING, (errmsg("celaest launcher: more than %d databases to serve; \"%s\" gets no workers",
                               kMaxDatabases, listed[i].name),
                        errhint("Restrict celaest.databases to the databases that use CELAEST.")));
      warned_full = true;
    }
  }
  const TimestampTz now = GetCurrentTimestamp();
  for (int slot = 0; slot < kMaxDatabases; ++slot) {
    DatabaseView view;
    if (!view_slot(slot, &view)) continue;
    if (!seen[slot]) {  // dropped, renamed away or no longer listed
      for (int role = 0; role < kRoles; ++role) forget(slot, role);
      free_slot(slot);
      continue;
    }
    const bool paused = view.paused_until > now;
    bool started = false;
    for (int role = 0; role < kRoles; ++role) {
      // Unknown: the maintenance worker alone goes and looks; Absent: nothing runs there.
      const bool wanted = !paused && (view.extension == Extension::Present ||
                                      (view.extension == Extension::Unknown && role == static_cast<int>(Role::Maintenance)));
      if (!wanted) {
        forget(slot, role);
        continue;
      }
      if (running(handles[slot][role])) continue;
      forget(slot, role);
      if (now - last_start[slot][role] < kRestartIntervalMs * 1000L && !view.wake) continue;
      handles[slot][role] = start_worker(view.database, static_cast<Role>(role));
      last_start[slot][role] = now;
      started = started || handles[slot][role] != nullptr;
    }
    if (view.wake && started) clear_wake(slot);
  }
}

// ---------------------------------------------------------------------- utility hook

ProcessUtility_hook_type previous_utility_hook = nullptr;
bool wake_at_commit = false;

// The statement needs `name` free of connections: ask its workers to go and keep them off.
void release_database_named(const char* name) {
  if (name == nullptr) return;
  const Oid database = get_database_oid(name, true);
  if (!OidIsValid(database)) return;
  if (!release_database(database, kReleasePauseMs, kReleaseWaitMs))
    ereport(DEBUG1, (errmsg("celaest: workers of database \"%s\" still running", name)));
}

bool has_option(List* options, const char* option_name) {
  ListCell* cell;
  foreach (cell, options)
    if (strcmp(static_cast<DefElem*>(lfirst(cell))->defname, option_name) == 0) return true;
  return false;
}

const char* template_of(CreatedbStmt* statement) {
  ListCell* cell;
  foreach (cell, statement->options) {
    auto* option = static_cast<DefElem*>(lfirst(cell));
    if (strcmp(option->defname, "template") == 0 && option->arg != nullptr) return defGetString(option);
  }
  return nullptr;
}

// PostgreSQL calls this for every utility statement of every backend. It stays in the
// PostgreSQL zone (boundary.hpp): plain frames, no C++ object, nothing that throws (the
// registry's functions are noexcept C), so an ERROR from the statement passes straight through.
void on_utility(PlannedStmt* statement, const char* query, bool read_only_tree, ProcessUtilityContext context,
                ParamListInfo params, QueryEnvironment* environment, DestReceiver* destination,
                QueryCompletion* completion) {
  Node* tree = statement->utilityStmt;
  switch (nodeTag(tree)) {
    case T_DropdbStmt:
      release_database_named(reinterpret_cast<DropdbStmt*>(tree)->dbname);
      break;
    case T_RenameStmt:
      if (reinterpret_cast<RenameStmt*>(tree)->renameType == OBJECT_DATABASE)
        release_database_named(reinterpret_cast<RenameStmt*>(tree)->subname);
      break;
    case T_AlterDatabaseStmt:
      if (has_option(reinterpret_cast<AlterDatabaseStmt*>(tree)->options, "tablespace"))
        release_database_named(reinterpret_cast<AlterDatabaseStmt*>(tree)->dbname);
      break;
    case T_CreatedbStmt:
      release_database_named(template_of(reinterpret_cast<CreatedbStmt*>(tree)));
      break;
    default:
      break;
  }
  if (previous_utility_hook)
    previous_utility_hook(statement, query, read_only_tree, context, params, environment, destination, completion);
  else
    standard_ProcessUtility(statement, query, read_only_tree, context, params, environment, destination, completion);
  if (IsA(tree, CreateExtensionStmt) && strcmp(reinterpret_cast<CreateExtensionStmt*>(tree)->extname, "celaest") == 0)
    wake_at_commit = true;
}

// Woken at commit, not before: a worker started earlier would not see the extension yet.
void on_transaction_end(XactEvent event, void*) noexcept {
  if (!wake_at_commit) return;
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
    wake_at_commit = false;
    wake_launcher_for_current_database();
  } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE) {
    wake_at_commit = false;
  }
}

// DROP DATABASE releases everything: the ledger spool's files of a database that no longer
// exists (records its backends handed on that no writer or later call wrote before the drop,
// files set aside) are removed, at most every 10 s. C++ zone (files only, no PostgreSQL call).
void sweep_spool_of_dropped_databases() {
  static int64_t last_sweep_ms = 0;
  const int64_t now = now_ms();
  if (existing_count <= 0 || now - last_sweep_ms < 10'000) return;
  last_sweep_ms = now;
  const size_t removed = ledger::remove_spool_of_databases_not_in(existing, static_cast<size_t>(existing_count));
  if (removed > 0)
    pg_guarded([removed] {
      ereport(LOG, (errmsg("celaest launcher: removed %zu ledger spool file(s) of dropped databases", removed)));
    });
}

}  // namespace

void register_launcher() noexcept {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  // No database connection of its own: it reads pg_database, a shared catalog.
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = 1;  // seconds; after a crash the postmaster starts it again
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "celaest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "celaest_launcher_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "celaest launcher");
  snprintf(worker.bgw_type, BGW_MAXLEN, "celaest launcher");
  RegisterBackgroundWorker(&worker);
}

void install_utility_hook() noexcept {
  previous_utility_hook = ProcessUtility_hook;
  ProcessUtility_hook = on_utility;
  RegisterXactCallback(on_transaction_end, nullptr);
}

bool serves_current_database() {
  if (!registry_available()) return false;
  const char* name = get_database_name(MyDatabaseId);
  return name != nullptr && database_served(name);
}

}  // namespace celaest::pg::workers

using celaest::pg::workers::kLauncherTickMs;
using celaest::pg::workers::reconcile;
using celaest::pg::workers::sweep_spool_of_dropped_databases;

// The launcher's main: reconcile every second, or at once when a CREATE EXTENSION commits or
// one of its workers starts or stops (bgw_notify_pid sets our latch). An error ends it (the
// postmaster starts it again); never an exception through PostgreSQL's frames.
extern "C" PGDLLEXPORT void celaest_launcher_main(Datum) {
  using celaest::pg::OnFailure;
  using celaest::pg::pg_guarded;
  celaest::pg::run_entry_point("launcher", OnFailure::RaiseError, [&] {
    pg_guarded([] {
      pqsignal(SIGHUP, SignalHandlerForConfigReload);
      pqsignal(SIGTERM, die);
      BackgroundWorkerUnblockSignals();
      BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
      pgstat_report_appname("celaest launcher");
    });
    celaest::pg::workers::launcher_attached(MyLatch);
    MemoryContext loop_context = pg_guarded(
        [] { return AllocSetContextCreate(TopMemoryContext, "celaest launcher", ALLOCSET_DEFAULT_SIZES); });
    for (;;) {
      // reconcile() is PostgreSQL-zone code (catalog scan, worker registration): plain frames.
      pg_guarded([loop_context] {
        MemoryContextSwitchTo(loop_context);
        MemoryContextReset(loop_context);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
          ConfigReloadPending = false;
          ProcessConfigFile(PGC_SIGHUP);
        }
        reconcile();
      });
      celaest::pg::workers::launcher_ran();
      sweep_spool_of_dropped_databases();
      pg_guarded([] {
        const int events =
            WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kLauncherTickMs, PG_WAIT_EXTENSION);
        if (events & WL_LATCH_SET) ResetLatch(MyLatch);
      });
    }
  });
}
