#include "pg/workers/batch_ends.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
}

namespace celaest::pg::batch_ends {

namespace {

struct Announcements {
  ConditionVariable batch_ended;
};

void initialize(Announcements& region) { ConditionVariableInit(&region.batch_ended); }

shmem::Segment<Announcements> segment("celaest batch ends", initialize);

bool announce_pending = false;

void announce_at_end_of_transaction(XactEvent event, void*) noexcept {
  run_entry_point("batch end announcement", on_failure_at(event), [&] {
    if (!announce_pending) return;
    switch (event) {
      case XACT_EVENT_COMMIT:
      case XACT_EVENT_PARALLEL_COMMIT:
        announce_pending = false;
        if (Announcements* shared = segment.shared())
          pg_guarded([shared] { ConditionVariableBroadcast(&shared->batch_ended); });
        break;
      case XACT_EVENT_ABORT:
      case XACT_EVENT_PARALLEL_ABORT:
      case XACT_EVENT_PREPARE:  // COMMIT PREPARED comes later: waiters find it at their next look
        announce_pending = false;
        break;
      default:
        break;
    }
  });
}

}  // namespace

void reserve_shared_memory() { segment.reserve(); }

void announce_at_commit() {
  if (!segment.shared()) return;
  static bool registered = false;
  if (!registered) {
    pg_guarded([] { RegisterXactCallback(announce_at_end_of_transaction, nullptr); });
    registered = true;
  }
  announce_pending = true;
}

void prepare_to_wait() {
  if (Announcements* shared = segment.shared())
    pg_guarded([shared] { ConditionVariablePrepareToSleep(&shared->batch_ended); });
}

void sleep(long timeout_ms) {
  if (timeout_ms <= 0) return;
  Announcements* shared = segment.shared();
  pg_guarded([shared, timeout_ms] {
    if (shared) {
      ConditionVariableTimedSleep(&shared->batch_ended, timeout_ms, PG_WAIT_EXTENSION);
    } else {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
    }
    CHECK_FOR_INTERRUPTS();
  });
}

void stop_waiting() {
  if (segment.shared()) pg_guarded([] { ConditionVariableCancelSleep(); });
}

}  // namespace celaest::pg::batch_ends
