#include "pg/workers/workers.hpp"
#include "pg/workers/worker_status.hpp"

#include "pg/boundary/settings.hpp"

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

// One unit of work: a SQL statement run in its own transaction with a fresh snapshot.
// Plain C style on purpose: PG_TRY frames hold no C++ objects, and an ERROR inside a unit
// is recorded and the loop goes on (a restart would lose the worker's rhythm).
// Returns the number of rows the statement reported in its first column (or -1 on error).
long run_unit(WorkerKind kind, const char* sql) {
  MemoryContext loop_context = CurrentMemoryContext;
  volatile long result = -1;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PG_TRY();
  {
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, sql);
    bool extension_present = OidIsValid(get_extension_oid("celaest", true));
    if (extension_present) {
      SPI_connect();
      int status = SPI_execute(sql, false, 0);
      if (status > 0 && SPI_processed > 0 && SPI_tuptable != nullptr) {
        bool is_null = true;
        Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
        result = is_null ? 0 : (long)DatumGetInt64(value);
      } else {
        result = 0;
      }
      SPI_finish();
    } else {
      result = 0;
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    worker_ran(kind, extension_present ? nullptr : "extension celaest not installed in this database");
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(loop_context);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    AbortCurrentTransaction();
    char message[256];
    snprintf(message, sizeof message, "%s", error->message ? error->message : "unknown error");
    worker_ran(kind, message);
    ereport(LOG, (errmsg("%s: %s", worker_name(kind), message)));
    FreeErrorData(error);
    pgstat_report_activity(STATE_IDLE, nullptr);
    result = -1;
  }
  PG_END_TRY();
  return result;
}

void connect_worker(WorkerKind kind) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(settings::worker_database, nullptr, 0);
  worker_started(kind, settings::worker_database);
  pgstat_report_appname(worker_name(kind));
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

void on_exit_mark_stopped(int, Datum kind) { worker_stopped(static_cast<WorkerKind>(DatumGetInt32(kind))); }

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

void register_all() {
  register_worker(worker_name(WorkerKind::Maintenance), "celaest_maintenance_main", WorkerKind::Maintenance);
  register_worker(worker_name(WorkerKind::BatchRunner), "celaest_batch_runner_main", WorkerKind::BatchRunner);
}

}  // namespace celaest::pg::workers

using celaest::pg::workers::WorkerKind;
using celaest::pg::workers::connect_worker;
using celaest::pg::workers::on_exit_mark_stopped;
using celaest::pg::workers::run_unit;
using celaest::pg::workers::serve_signals;
using celaest::pg::workers::wait_for;

// License upkeep every minute; API-key health checks every celaest.health_check_interval.
extern "C" PGDLLEXPORT void celaest_maintenance_main(Datum) {
  connect_worker(WorkerKind::Maintenance);
  before_shmem_exit(on_exit_mark_stopped, Int32GetDatum(static_cast<int>(WorkerKind::Maintenance)));
  MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "celaest maintenance", ALLOCSET_DEFAULT_SIZES);
  TimestampTz next_health_check = 0;
  for (;;) {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
    if (!RecoveryInProgress()) {
      celaest::pg::workers::worker_state(WorkerKind::Maintenance, "refreshing licenses");
      run_unit(WorkerKind::Maintenance,
               "SELECT CASE WHEN to_regprocedure('celaest.refresh_licenses()') IS NULL THEN 0 "
               "ELSE celaest.refresh_licenses()::bigint END");
      TimestampTz now = GetCurrentTimestamp();
      int interval_s = celaest::pg::settings::health_check_interval_s;
      if (interval_s > 0 && now >= next_health_check) {
        celaest::pg::workers::worker_state(WorkerKind::Maintenance, "checking api keys");
        run_unit(WorkerKind::Maintenance, "SELECT count(*) FROM celaest.check_api_keys()");
        next_health_check = TimestampTzPlusMilliseconds(now, (int64)interval_s * 1000);
      }
    }
    celaest::pg::workers::worker_state(WorkerKind::Maintenance, "idle");
    wait_for(60'000);
  }
}

// Runs pending batch tasks; woken by submit_batch, otherwise polls every second.
// Two transactions per pass: the claim (tasks enter processing and are charged to the
// license) commits before any provider is called, so other sessions see the tasks in flight
// and no license row lock is held during HTTP; the calls and their records are the second.
extern "C" PGDLLEXPORT void celaest_batch_runner_main(Datum) {
  connect_worker(WorkerKind::BatchRunner);
  before_shmem_exit(on_exit_mark_stopped, Int32GetDatum(static_cast<int>(WorkerKind::BatchRunner)));
  MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "celaest batch runner", ALLOCSET_DEFAULT_SIZES);
  bool requeued = false;
  for (;;) {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
    long claimed = 0;
    if (!RecoveryInProgress()) {
      celaest::pg::workers::worker_state(WorkerKind::BatchRunner, "claiming");
      if (!requeued) {
        requeued = run_unit(WorkerKind::BatchRunner,
                            "SELECT CASE WHEN to_regprocedure('celaest._requeue_orphaned_tasks()') IS NULL THEN 0 "
                            "ELSE celaest._requeue_orphaned_tasks()::bigint END") >= 0;
      }
      claimed = run_unit(WorkerKind::BatchRunner,
                         "SELECT CASE WHEN to_regprocedure('celaest._claim_batch_tasks(integer)') IS NULL THEN 0 "
                         "ELSE celaest._claim_batch_tasks(current_setting('celaest.worker_concurrency')::int)::bigint END");
      if (claimed > 0) {
        celaest::pg::workers::worker_state(WorkerKind::BatchRunner, "calling providers");
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
    celaest::pg::workers::worker_state(WorkerKind::BatchRunner, "idle");
    // Busy: straight to the next pass, but a reload (e.g. worker_concurrency) still applies.
    if (claimed <= 0) wait_for(1'000);
    else serve_signals();
  }
}
