// Batch ends, announced (README "The batch runner"): wait_batch() sleeps on one condition
// variable in shared memory, and every transaction that ends a batch broadcasts it when it
// commits (a trigger on task_batches.status arranges that). Waiters recheck their own batch
// when woken, so one variable serves every batch of every database. Without
// shared_preload_libraries there is no shared memory: announce does nothing and the sleep is a
// plain latch wait of the caller's length (wait_batch then polls).
#pragma once

namespace celaest::pg::batch_ends {

void reserve_shared_memory();  // from _PG_init while preloading

// This transaction ended a batch: wake every waiter when (and only if) it commits.
void announce_at_commit();

// Call before looking at the batch, so that an end announced between the look and the sleep
// still wakes the sleep; then sleep() or stop_waiting().
void prepare_to_wait();
// Up to `timeout_ms`; returns early when a batch end is announced. CHECK_FOR_INTERRUPTS inside
// (a cancel leaves through the boundary as an ERROR).
void sleep(long timeout_ms);
void stop_waiting();

}  // namespace celaest::pg::batch_ends
