#include "pg/workers/workers.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/shared_state.hpp"

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

using shared::WorkerKind;

// What one unit of work left behind, for the C++ side to record.
struct UnitOutcome {
  bool succeeded;
  bool extension_present;
  long rows;        // the first column of the statement's first row
  char error[256];  // when !succeeded
};

// One unit of work: a SQL statement run in its own transaction with a fresh snapshot.
// Plain C on purpose: the PG_TRY block runs no C++ (nothing that throws may leave it), and its
// frame holds only the outcome's plain fields. An ERROR inside a unit is recorded and the loop
// goes on (a restart would lose the worker's rhythm).
void run_in_own_transaction(const char* sql, UnitOutcome* outcome) {
  MemoryContext loop_context = CurrentMemoryContext;
  outcome->succeeded = false;
  outcome->extension_present = false;
  outcome->rows = -1;
  outcome->error[0] = '\0';
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PG_TRY();
  {
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, sql);
    outcome->extension_present = OidIsValid(get_extension_oid("celaest", true));
    outcome->rows = 0;
    if (outcome->extension_present) {
      SPI_connect();
      int status = SPI_execute(sql, false, 0);
      if (status > 0 && SPI_processed > 0 && SPI_tuptable != nullptr) {
        bool is_null = true;
        Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
        outcome->rows = is_null ? 0 : (long)DatumGetInt64(value);
      }
      SPI_finish();
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    outcome->succeeded = true;
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(loop_context);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    AbortCurrentTransaction();
    snprintf(outcome->error, sizeof outcome->error, "%s", error->message ? error->message : "unknown error");
    FreeErrorData(error);
    pgstat_report_activity(STATE_IDLE, nullptr);
    outcome->succeeded = false;
    outcome->rows = -1;
  }
  PG_END_TRY();
}

// Runs one unit and records its outcome in shared memory (after PG_END_TRY: C++ may throw).
// Returns the number of rows the statement reported in its first column (or -1 on error).
long run_unit(WorkerKind kind, const char* sql) {
  UnitOutcome outcome;
  pg_guarded([&] { run_in_own_transaction(sql, &outcome); });
  if (!outcome.succeeded) {
    shared::worker_ran(kind, outcome.error);
    pg_guarded([&] { ereport(LOG, (errmsg("%s: %s", shared::worker_name(kind), outcome.error))); });
    return -1;
  }
  shared::worker_ran(kind, outcome.extension_present ? nullptr : "extension celaest not installed in this database");
  return outcome.rows;
}

void connect_worker(WorkerKind kind) {
  pg_guarded([] {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(settings::worker_database, nullptr, 0);
  });
  shared::worker_started(kind, settings::worker_database);
  pg_guarded([kind] { pgstat_report_appname(shared::worker_name(kind)); });
}

// Serves a terminate or cancel, and applies a configuration reload (SIGHUP).
void serve_signals() {
  pg_guarded([] {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
  });
}

// Waits up to timeout_ms for a latch set, a config reload or postmaster death.
void wait_for(long timeout_ms) {
  pg_guarded([timeout_ms] {
    int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms, PG_WAIT_EXTENSION);
    if (events & WL_LATCH_SET) ResetLatch(MyLatch);
  });
  serve_signals();
}

// Each pass of a worker's loop starts with its memory context emptied.
void start_pass(MemoryContext loop_context) {
  pg_guarded([loop_context] {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
  });
}

void on_exit_mark_stopped(int, Datum kind) noexcept {
  run_entry_point("worker exit", OnFailure::Warn,
                  [&] { shared::worker_stopped(static_cast<WorkerKind>(DatumGetInt32(kind))); });
}

void register_worker(const char* name, const char* entry_point, WorkerKind kind) {
  BackgroundWorker worker;
  std::memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;  // never in recovery: it writes
  worker.bgw_restart_time = 5;                             // seconds; back after a crash
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "celaest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", entry_point);
  snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
  snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
  worker.bgw_main_arg = Int32GetDatum(static_cast<int>(kind));
  RegisterBackgroundWorker(&worker);
}

}  // namespace

void request_shared_state() { shared::request(); }

void register_all() {
  register_worker(shared::worker_name(WorkerKind::Maintenance), "celaest_maintenance_main", WorkerKind::Maintenance);
  register_worker(shared::worker_name(WorkerKind::BatchRunner), "celaest_batch_runner_main", WorkerKind::BatchRunner);
}

}  // namespace celaest::pg::workers

using celaest::pg::OnFailure;
using celaest::pg::pg_guarded;
using celaest::pg::run_entry_point;
using celaest::pg::shared::WorkerKind;
using celaest::pg::workers::connect_worker;
using celaest::pg::workers::on_exit_mark_stopped;
using celaest::pg::workers::run_unit;
using celaest::pg::workers::serve_signals;
using celaest::pg::workers::start_pass;
using celaest::pg::workers::wait_for;

// Both mains: an error that reaches them is an ERROR, which ends the worker (the postmaster
// starts it again after bgw_restart_time); never an exception through PostgreSQL's frames.

// License upkeep every minute; API-key health checks every celaest.health_check_interval.
extern "C" PGDLLEXPORT void celaest_maintenance_main(Datum) {
  run_entry_point("maintenance worker", OnFailure::RaiseError, [] {
    connect_worker(WorkerKind::Maintenance);
    pg_guarded([] {
      before_shmem_exit(on_exit_mark_stopped, Int32GetDatum(static_cast<int>(WorkerKind::Maintenance)));
    });
    MemoryContext loop_context = pg_guarded(
        [] { return AllocSetContextCreate(TopMemoryContext, "celaest maintenance", ALLOCSET_DEFAULT_SIZES); });
    TimestampTz next_health_check = 0;
    for (;;) {
      start_pass(loop_context);
      if (!RecoveryInProgress()) {
        celaest::pg::shared::worker_state(WorkerKind::Maintenance, "refreshing licenses");
        run_unit(WorkerKind::Maintenance,
                 "SELECT CASE WHEN to_regprocedure('celaest.refresh_licenses()') IS NULL THEN 0 "
                 "ELSE celaest.refresh_licenses()::bigint END");
        TimestampTz now = GetCurrentTimestamp();
        int interval_s = celaest::pg::settings::health_check_interval_s;
        if (interval_s > 0 && now >= next_health_check) {
          celaest::pg::shared::worker_state(WorkerKind::Maintenance, "checking api keys");
          run_unit(WorkerKind::Maintenance, "SELECT count(*) FROM celaest.check_api_keys()");
          next_health_check = TimestampTzPlusMilliseconds(now, (int64)interval_s * 1000);
        }
      }
      celaest::pg::shared::worker_state(WorkerKind::Maintenance, "idle");
      wait_for(60'000);
    }
  });
}

// Runs pending batch tasks; woken by submit_batch, otherwise polls every second.
// Two transactions per pass: the claim (tasks enter processing and are charged to the
// license) commits before any provider is called, so other sessions see the tasks in flight
// and no license row lock is held during HTTP; the calls and their records are the second.
extern "C" PGDLLEXPORT void celaest_batch_runner_main(Datum) {
  run_entry_point("batch runner", OnFailure::RaiseError, [] {
    connect_worker(WorkerKind::BatchRunner);
    pg_guarded([] {
      before_shmem_exit(on_exit_mark_stopped, Int32GetDatum(static_cast<int>(WorkerKind::BatchRunner)));
    });
    MemoryContext loop_context = pg_guarded(
        [] { return AllocSetContextCreate(TopMemoryContext, "celaest batch runner", ALLOCSET_DEFAULT_SIZES); });
    bool requeued = false;
    for (;;) {
      start_pass(loop_context);
      long claimed = 0;
      if (!RecoveryInProgress()) {
        celaest::pg::shared::worker_state(WorkerKind::BatchRunner, "claiming");
        if (!requeued) {
          requeued = run_unit(WorkerKind::BatchRunner,
                              "SELECT CASE WHEN to_regprocedure('celaest._requeue_orphaned_tasks()') IS NULL THEN 0 "
                              "ELSE celaest._requeue_orphaned_tasks()::bigint END") >= 0;
        }
        claimed = run_unit(WorkerKind::BatchRunner,
                           "SELECT CASE WHEN to_regprocedure('celaest._claim_batch_tasks(integer)') IS NULL THEN 0 "
                           "ELSE celaest._claim_batch_tasks(current_setting('celaest.worker_concurrency')::int)::bigint END");
        if (claimed > 0) {
          celaest::pg::shared::worker_state(WorkerKind::BatchRunner, "calling providers");
          long ran = run_unit(WorkerKind::BatchRunner,
                              "SELECT celaest._run_claimed_tasks(current_setting('celaest.worker_concurrency')::int)::bigint");
          if (ran < 0) {
            // The pass failed as a whole: its tasks must not stay in processing forever.
            run_unit(WorkerKind::BatchRunner,
                     "WITH failed AS (UPDATE celaest.processed_tasks SET status = 'failed', "
                     "  completed_at = clock_timestamp(), error_code = 'runner_error', "
                     "  error_message = 'the batch runner failed while running this task (see the server log)' "
                     "  WHERE status = 'processing' AND metadata->>'claimed_by' = pg_backend_pid()::text "
                     "  RETURNING batch_id) "
                     "SELECT count(celaest._refresh_batch(b)) FROM (SELECT DISTINCT batch_id FROM failed) s(b)");
          }
        }
      }
      celaest::pg::shared::worker_state(WorkerKind::BatchRunner, "idle");
      // Busy: straight to the next pass, but a reload (e.g. worker_concurrency) still applies.
      if (claimed <= 0) wait_for(1'000);
      else serve_signals();
    }
  });
}
