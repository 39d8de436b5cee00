#include "pg/workers/workers.hpp"

#include "pg/boundary/settings.hpp"
#include "pg/boundary/shared_state.hpp"
#include "pg/workers/launcher.hpp"
#include "pg/workers/registry.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <cstdio>
#include <cstring>

namespace celaest::pg::workers {

namespace {

// The calling worker: its database's registry slot and its role.
int my_slot = -1;
Role my_role = Role::Maintenance;

enum class UnitOutcome { Ran, Failed, NoExtension };

// One unit of work: a SQL statement run in its own transaction with a fresh snapshot.
// Plain C style on purpose: the PG_TRY block holds no C++ object and calls no C++; the
// outcome is recorded after PG_END_TRY. An ERROR inside a unit is logged and the loop goes
// on (a restart would lose the worker's rhythm).
// `*rows` is the first column of the first row (0 when none).
UnitOutcome run_unit(const char* sql, long* rows) {
  MemoryContext loop_context = CurrentMemoryContext;
  volatile UnitOutcome outcome = UnitOutcome::Ran;
  volatile long result = 0;
  char message[256] = "";
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PG_TRY();
  {
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, sql);
    if (OidIsValid(get_extension_oid("celaest", true))) {
      SPI_connect();
      int status = SPI_execute(sql, false, 0);
      if (status > 0 && SPI_processed > 0 && SPI_tuptable != nullptr) {
        bool is_null = true;
        Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
        result = is_null ? 0 : (long)DatumGetInt64(value);
      }
      SPI_finish();
    } else {
      outcome = UnitOutcome::NoExtension;
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(loop_context);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    AbortCurrentTransaction();
    snprintf(message, sizeof message, "%s", error->message ? error->message : "unknown error");
    FreeErrorData(error);
    outcome = UnitOutcome::Failed;
  }
  PG_END_TRY();
  pgstat_report_activity(STATE_IDLE, nullptr);
  if (outcome == UnitOutcome::Failed) {
    ereport(LOG, (errmsg("%s: %s", role_name(my_role), message)));
    worker_ran(my_slot, my_role, message);
  } else if (outcome == UnitOutcome::Ran) {
    extension_present(my_slot);
    worker_ran(my_slot, my_role, nullptr);
  }
  *rows = outcome == UnitOutcome::Ran ? result : -1;
  return outcome;
}

// A unit that found no extension (DROP EXTENSION, or a database that never had it): this
// database is not served until CREATE EXTENSION wakes the launcher. Exit 0: not restarted.
void exit_if_absent(UnitOutcome outcome) {
  if (outcome != UnitOutcome::NoExtension) return;
  extension_absent(my_slot);
  proc_exit(0);
}

void run(const char* sql, long* rows = nullptr) {
  long ignored = 0;
  exit_if_absent(run_unit(sql, rows ? rows : &ignored));
}

// Serves a terminate or cancel, and applies a configuration reload (SIGHUP).
void serve_signals() {
  CHECK_FOR_INTERRUPTS();
  if (ConfigReloadPending) {
    ConfigReloadPending = false;
    ProcessConfigFile(PGC_SIGHUP);
  }
}

// Waits up to timeout_ms for a latch set, a config reload or postmaster death.
void wait_for(long timeout_ms) {
  int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms, PG_WAIT_EXTENSION);
  if (events & WL_LATCH_SET) ResetLatch(MyLatch);
  serve_signals();
}

void on_exit_detach(int, Datum) { worker_detached(my_slot, my_role); }

// License upkeep every minute; API-key health checks every celaest.health_check_interval.
[[noreturn]] void maintenance_loop() {
  MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "celaest maintenance", ALLOCSET_DEFAULT_SIZES);
  TimestampTz next_health_check = 0;
  for (;;) {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
    if (!RecoveryInProgress()) {
      worker_state(my_slot, my_role, "refreshing licenses");
      run("SELECT CASE WHEN to_regprocedure('celaest.refresh_licenses()') IS NULL THEN 0 "
          "ELSE celaest.refresh_licenses()::bigint END");
      TimestampTz now = GetCurrentTimestamp();
      int interval_s = settings::health_check_interval_s;
      if (interval_s > 0 && now >= next_health_check) {
        worker_state(my_slot, my_role, "checking api keys");
        run("SELECT count(*) FROM celaest.check_api_keys()");
        next_health_check = TimestampTzPlusMilliseconds(now, (int64)interval_s * 1000);
      }
    }
    worker_state(my_slot, my_role, "idle");
    wait_for(60'000);
  }
}

// Runs pending batch tasks; woken by submit_batch, otherwise polls every second.
// Two transactions per pass: the claim (tasks enter processing and are charged to the
// license) commits before any provider is called, so other sessions see the tasks in flight
// and no license row lock is held during HTTP; the calls and their records are the second.
[[noreturn]] void batch_runner_loop() {
  MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "celaest batch runner", ALLOCSET_DEFAULT_SIZES);
  TimestampTz next_recovery = 0;
  for (;;) {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
    long claimed = 0;
    if (!RecoveryInProgress()) {
      worker_state(my_slot, my_role, "claiming");
      // Orphans (tasks of a runner that is gone) can appear at any time: a runner of this
      // database killed and restarted, a backend running _run_pending_tasks() terminated. Looked
      // for at most once a second, whatever the load.
      const TimestampTz now = GetCurrentTimestamp();
      if (now >= next_recovery) {
        run("SELECT CASE WHEN to_regprocedure('celaest._recover_orphaned_tasks()') IS NULL THEN 0 "
            "ELSE celaest._recover_orphaned_tasks()::bigint END");
        next_recovery = TimestampTzPlusMilliseconds(now, 1000);
      }
      run("SELECT CASE WHEN to_regprocedure('celaest._claim_batch_tasks(integer)') IS NULL THEN 0 "
          "ELSE celaest._claim_batch_tasks(current_setting('celaest.worker_concurrency')::int)::bigint END",
          &claimed);
      if (claimed > 0) {
        worker_state(my_slot, my_role, "calling providers");
        long ran = 0;
        run("SELECT celaest._run_claimed_tasks(current_setting('celaest.worker_concurrency')::int)::bigint", &ran);
        if (ran < 0) {
          // The pass failed as a whole: its tasks must not stay in processing forever.
          run("WITH failed AS (UPDATE celaest.processed_tasks SET status = 'failed', "
              "  completed_at = clock_timestamp(), error_code = 'runner_error', "
              "  error_message = 'the batch runner failed while running this task (see the server log)' "
              "  WHERE status = 'processing' AND metadata->>'claimed_by' = pg_backend_pid()::text "
              "  RETURNING batch_id) "
              "SELECT count(celaest._refresh_batch(b)) FROM (SELECT DISTINCT batch_id FROM failed) s(b)");
        }
      }
    }
    worker_state(my_slot, my_role, "idle");
    // Busy: straight to the next pass, but a reload (e.g. worker_concurrency) still applies.
    if (claimed <= 0) wait_for(1'000);
    else serve_signals();
  }
}

}  // namespace

void request_shared_state() {
  shared::request();
  request_registry();
}

void register_all() {
  register_launcher();
  install_utility_hook();
}

}  // namespace celaest::pg::workers

// A worker of one database, started by the launcher: bgw_main_arg is the database, bgw_extra
// the role. It serves the database until the extension is gone from it (exit 0), SIGTERM or
// postmaster death.
extern "C" PGDLLEXPORT void celaest_database_worker_main(Datum main_arg) {
  using namespace celaest::pg::workers;
  const Oid database = DatumGetObjectId(main_arg);
  int role_index = 0;
  memcpy(&role_index, MyBgworkerEntry->bgw_extra, sizeof role_index);
  my_role = role_index == static_cast<int>(Role::BatchRunner) ? Role::BatchRunner : Role::Maintenance;
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
  my_slot = worker_attached(database, my_role);
  if (my_slot < 0) proc_exit(0);  // the launcher no longer serves this database
  before_shmem_exit(on_exit_detach, (Datum)0);
  pgstat_report_appname(role_name(my_role));
  if (my_role == Role::BatchRunner) batch_runner_loop();
  maintenance_loop();
}
