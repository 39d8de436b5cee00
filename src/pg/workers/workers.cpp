#include "pg/workers/workers.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/ledger/counters.hpp"
#include "pg/ledger/records.hpp"
#include "pg/workers/launcher.hpp"
#include "pg/workers/registry.hpp"
#include "pg/workers/stream_runner.hpp"

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

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

namespace celaest::pg::workers {

namespace {

// The calling worker: its database's registry slot and its role.
int my_slot = -1;
Role my_role = Role::Maintenance;

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

// Ends this worker: its database has no extension (any more). Exit 0: the launcher does not
// start it again until CREATE EXTENSION wakes it (registry.hpp).
[[noreturn]] void leave_database() {
  extension_absent(my_slot);
  pg_guarded([] { proc_exit(0); });
  std::abort();  // proc_exit does not return
}

// Runs one unit and records its outcome (after PG_END_TRY: C++ may throw). `*rows` is the
// statement's first column, -1 when the unit failed.
void run(const char* sql, long* rows = nullptr) {
  UnitOutcome outcome;
  pg_guarded([&] { run_in_own_transaction(sql, &outcome); });
  if (rows) *rows = outcome.succeeded ? outcome.rows : -1;
  if (!outcome.succeeded) {
    worker_ran(my_slot, my_role, outcome.error);
    pg_guarded([&] { ereport(LOG, (errmsg("%s: %s", role_name(my_role), outcome.error))); });
    return;
  }
  if (!outcome.extension_present) leave_database();
  extension_present(my_slot);
  worker_ran(my_slot, my_role, nullptr);
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

// Waits up to timeout_ms for a latch set, a config reload or postmaster death; true when the
// latch was set.
bool wait_for(long timeout_ms) {
  const bool woken = pg_guarded([timeout_ms] {
    int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms, PG_WAIT_EXTENSION);
    if (events & WL_LATCH_SET) ResetLatch(MyLatch);
    return (events & WL_LATCH_SET) != 0;
  });
  serve_signals();
  return woken;
}

// Each pass of a worker's loop starts with its memory context emptied.
void start_pass(MemoryContext loop_context) {
  pg_guarded([loop_context] {
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
  });
}

void on_exit_detach(int, Datum) noexcept {
  run_entry_point("worker exit", OnFailure::Warn, [&] { worker_detached(my_slot, my_role); });
}

// License upkeep at every pass, at least every minute; API-key health checks every
// celaest.health_check_interval; the recent daily ROI rows every celaest.roi_refresh_interval.
// The loop sleeps until the first of them is due (an interval shorter than a minute is kept,
// not rounded up to the next minute).
[[noreturn]] void maintenance_loop() {
  MemoryContext loop_context = pg_guarded(
      [] { return AllocSetContextCreate(TopMemoryContext, "celaest maintenance", ALLOCSET_DEFAULT_SIZES); });
  // When each job last ran: its interval is read at every pass, so a reload that shortens it
  // applies at once (a SIGHUP also wakes this loop).
  constexpr long kLicenseUpkeepIntervalMs = 60'000;
  TimestampTz last_health_check = 0;
  TimestampTz last_roi_refresh = 0;
  for (;;) {
    start_pass(loop_context);
    TimestampTz now = pg_guarded([] { return GetCurrentTimestamp(); });
    auto due = [&now](TimestampTz last, int interval_s) {
      return interval_s > 0 && now >= TimestampTzPlusMilliseconds(last, (int64)interval_s * 1000);
    };
    if (!RecoveryInProgress()) {
      // At every pass (a wake-up included): it also tells whether the extension is still there.
      worker_state(my_slot, my_role, "refreshing licenses");
      run("SELECT CASE WHEN to_regprocedure('celaest.refresh_licenses()') IS NULL THEN 0 "
          "ELSE celaest.refresh_licenses()::bigint END");
      if (due(last_health_check, settings::health_check_interval_s)) {
        worker_state(my_slot, my_role, "checking api keys");
        run("SELECT count(*) FROM celaest.check_api_keys()");
        last_health_check = now;
      }
      // Yesterday's and today's daily ROI rows of every organization, in its own time zone
      // (API.md "ROI": the upkeep worker refreshes them).
      if (due(last_roi_refresh, settings::roi_refresh_interval_s)) {
        worker_state(my_slot, my_role, "refreshing roi");
        run("SELECT CASE WHEN to_regprocedure('celaest._roi_refresh_recent()') IS NULL THEN 0 "
            "ELSE celaest._roi_refresh_recent()::bigint END");
        last_roi_refresh = now;
      }
    }
    worker_state(my_slot, my_role, "idle");
    // Until the next job is due (at most a minute; recovery: look again in a minute).
    now = pg_guarded([] { return GetCurrentTimestamp(); });
    long sleep_ms = kLicenseUpkeepIntervalMs;
    auto until_due = [&now, &sleep_ms](TimestampTz last, int interval_s) {
      if (interval_s <= 0) return;
      const TimestampTz next = TimestampTzPlusMilliseconds(last, (int64)interval_s * 1000);
      sleep_ms = std::min(sleep_ms, next <= now ? 0L : static_cast<long>((next - now) / 1000) + 1);
    };
    if (!RecoveryInProgress()) {
      until_due(last_health_check, settings::health_check_interval_s);
      until_due(last_roi_refresh, settings::roi_refresh_interval_s);
    }
    wait_for(std::max(sleep_ms, 1L));
  }
}

// Runs pending batch tasks as a stream (stream_runner.hpp); woken by submit_batch, otherwise
// it looks for work every second. Orphans (tasks of a runner that is gone: a runner of this
// database killed and restarted, a backend running _run_pending_tasks() terminated) can appear
// at any time: looked for at most once a second, whatever the load.
[[noreturn]] void batch_runner_loop() {
  MemoryContext loop_context = pg_guarded(
      [] { return AllocSetContextCreate(TopMemoryContext, "celaest batch runner", ALLOCSET_DEFAULT_SIZES); });
  BatchStream stream;
  TimestampTz next_recovery = 0;
  bool busy = false;
  for (;;) {
    start_pass(loop_context);
    long sleep_ms = -1;
    if (!RecoveryInProgress()) {
      const TimestampTz now = GetCurrentTimestamp();
      if (now >= next_recovery) {
        worker_state(my_slot, my_role, "recovering orphans");
        run("SELECT CASE WHEN to_regprocedure('celaest._recover_orphaned_tasks()') IS NULL THEN 0 "
            "ELSE celaest._recover_orphaned_tasks()::bigint END");
        next_recovery = TimestampTzPlusMilliseconds(now, 1000);
      }
      if (!busy) worker_state(my_slot, my_role, "running tasks");
      busy = true;
      sleep_ms = stream.round();
    }
    if (sleep_ms == 0) {
      serve_signals();  // busy: straight on, but a reload (e.g. worker_concurrency) still applies
      continue;
    }
    busy = false;
    worker_state(my_slot, my_role, "idle");
    if (wait_for(sleep_ms < 0 ? 1'000 : std::min(sleep_ms, 1'000L))) stream.woken();
  }
}

// The ledger writer (README "The ledger"): writes the records of AI calls whose transaction did
// not commit (woken by the backend that handed them on), and folds the calls' charges into the
// licenses and keys rows at least every 200 ms. At its first start after shared memory was
// made (a server start, a crash), it first rebuilds the counters from processed_tasks; calls
// charge the rows themselves until then (ledger::served()).
[[noreturn]] void ledger_writer_loop() {
  MemoryContext loop_context = pg_guarded(
      [] { return AllocSetContextCreate(TopMemoryContext, "celaest ledger writer", ALLOCSET_DEFAULT_SIZES); });
  bool ready = ledger::writer_ready(MyDatabaseId);
  for (;;) {
    start_pass(loop_context);
    if (!RecoveryInProgress()) {
      if (!ready || ledger::spooled_count(MyDatabaseId) > 0) {
        worker_state(my_slot, my_role, "writing records");
        run("SELECT CASE WHEN to_regprocedure('celaest._ledger_drain()') IS NULL THEN 0 "
            "ELSE celaest._ledger_drain() END");
      }
      if (!ready) {
        worker_state(my_slot, my_role, "rebuilding counters");
        long corrected = -1;
        run("SELECT CASE WHEN to_regprocedure('celaest._ledger_rebuild()') IS NULL THEN -1 "
            "ELSE celaest._ledger_rebuild() END",
            &corrected);
        if (corrected >= 0) {
          ledger::mark_writer_ready(MyDatabaseId);
          ready = true;
          if (corrected > 0)
            pg_guarded([corrected] {
              ereport(LOG, (errmsg("celaest ledger writer: %ld counters rebuilt from processed_tasks", corrected)));
            });
        }
      }
      if (ready && ledger::has_deltas(MyDatabaseId)) {
        worker_state(my_slot, my_role, "folding counters");
        run("SELECT celaest._ledger_fold()");
      }
    }
    worker_state(my_slot, my_role, "idle");
    wait_for(ready ? 200 : 1'000);
  }
}

}  // namespace

void register_all() {
  register_launcher();
  install_utility_hook();
}

}  // namespace celaest::pg::workers

// A worker of one database, started by the launcher: bgw_main_arg is the database, bgw_extra
// the role. It serves the database until the extension is gone from it (exit 0), SIGTERM or
// postmaster death. An error that reaches it is an ERROR, which ends the worker (the launcher
// starts it again); never an exception through PostgreSQL's frames.
extern "C" PGDLLEXPORT void celaest_database_worker_main(Datum main_arg) {
  using namespace celaest::pg;
  using namespace celaest::pg::workers;
  run_entry_point("database worker", OnFailure::RaiseError, [&] {
    const Oid database = DatumGetObjectId(main_arg);
    int role_index = 0;
    memcpy(&role_index, MyBgworkerEntry->bgw_extra, sizeof role_index);
    my_role = role_index == static_cast<int>(Role::BatchRunner)    ? Role::BatchRunner
              : role_index == static_cast<int>(Role::LedgerWriter) ? Role::LedgerWriter
                                                                   : Role::Maintenance;
    pg_guarded([database] {
      pqsignal(SIGHUP, SignalHandlerForConfigReload);
      pqsignal(SIGTERM, die);
      BackgroundWorkerUnblockSignals();
      BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
    });
    my_slot = worker_attached(database, my_role);
    if (my_slot < 0) pg_guarded([] { proc_exit(0); });  // the launcher no longer serves it
    pg_guarded([] {
      before_shmem_exit(on_exit_detach, (Datum)0);
      pgstat_report_appname(role_name(my_role));
    });
    if (my_role == Role::BatchRunner) batch_runner_loop();
    if (my_role == Role::LedgerWriter) ledger_writer_loop();
    maintenance_loop();
  });
}
