#include "core/fixed_text.hpp"

#include "pg/workers/worker_status.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
}

namespace celaest::pg::workers {

namespace {

struct WorkerSlot {
  int pid;
  core::FixedText<NAMEDATALEN> database;
  core::FixedText<32> state;
  TimestampTz last_run;
  core::FixedText<256> last_error;
  int64 runs;
  Latch* latch;  // the worker's own, in its PGPROC (shared memory too)
};

struct WorkerSlots {
  WorkerSlot slot[kWorkerKinds];
};

shmem::Segment<WorkerSlots> segment("celaest worker status");

// fn(slot) under the lock; nothing without shared memory (no workers then).
template <typename Fn>
void update(WorkerKind kind, Fn&& fn) {
  if (!segment.shared()) return;
  segment.locked(LW_EXCLUSIVE, [&](WorkerSlots& slots) { fn(slots.slot[static_cast<int>(kind)]); });
}

}  // namespace

const char* worker_name(WorkerKind kind) {
  return kind == WorkerKind::Maintenance ? "celaest maintenance" : "celaest batch runner";
}

WorkerStatus worker_status(WorkerKind kind) {
  WorkerStatus status;
  status.worker = worker_name(kind);
  if (!segment.shared()) {
    status.state = "not preloaded";
    return status;
  }
  segment.locked(LW_SHARED, [&](WorkerSlots& slots) {
    const WorkerSlot& slot = slots.slot[static_cast<int>(kind)];
    status.pid = slot.pid;
    status.database = slot.database.view();
    status.state = slot.state.empty() ? "not started" : slot.state.c_str();
    status.last_run = slot.last_run;
    status.last_error = slot.last_error.view();
    status.runs = slot.runs;
  });
  return status;
}

void worker_started(WorkerKind kind, const char* database) {
  update(kind, [&](WorkerSlot& slot) {
    slot.pid = MyProcPid;
    slot.database.assign(database ? database : "");
    slot.state.assign("starting");
    slot.latch = MyLatch;
  });
}

void worker_state(WorkerKind kind, const char* new_state) {
  update(kind, [&](WorkerSlot& slot) { slot.state.assign(new_state ? new_state : ""); });
}

void worker_ran(WorkerKind kind, const char* error_or_null) {
  const TimestampTz now = GetCurrentTimestamp();
  update(kind, [&](WorkerSlot& slot) {
    slot.last_run = now;
    slot.runs++;
    slot.last_error.assign(error_or_null ? error_or_null : "");
  });
}

void worker_stopped(WorkerKind kind) {
  update(kind, [&](WorkerSlot& slot) {
    slot.pid = 0;
    slot.latch = nullptr;
    slot.state.assign("stopped");
  });
}

void wake_worker(WorkerKind kind) {
  if (!segment.shared()) return;
  Latch* latch = segment.locked(LW_SHARED, [&](WorkerSlots& slots) { return slots.slot[static_cast<int>(kind)].latch; });
  if (latch) pg_guarded([&] { SetLatch(latch); });
}

void reserve_status_slots() { segment.reserve(); }

}  // namespace celaest::pg::workers
