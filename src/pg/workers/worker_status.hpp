// What each background worker is doing, for worker_status(), and its latch, so that
// submit_batch can wake the batch runner. In shared memory; not preloaded, there are no
// workers and worker_status() says "not preloaded".
#pragma once

#include <cstdint>
#include <string>

namespace celaest::pg::workers {

enum class WorkerKind : int { Maintenance = 0, BatchRunner = 1 };
inline constexpr int kWorkerKinds = 2;
const char* worker_name(WorkerKind kind);

struct WorkerStatus {
  std::string worker, database, state, last_error;
  int pid = 0;
  int64_t last_run = 0;  // TimestampTz, 0 = never
  int64_t runs = 0;
};
WorkerStatus worker_status(WorkerKind kind);

// From the worker itself.
void worker_started(WorkerKind kind, const char* database);
void worker_state(WorkerKind kind, const char* state);
void worker_ran(WorkerKind kind, const char* error_or_null);
void worker_stopped(WorkerKind kind);

void wake_worker(WorkerKind kind);  // sets the worker's latch (e.g. after submit_batch)

void reserve_status_slots();  // from _PG_init

}  // namespace celaest::pg::workers
