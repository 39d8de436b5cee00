// max_concurrent_tasks for the synchronous calls (run_prompt, ai_chat).
//
// API.md counts "tasks processing at once". A synchronous call is a task processing from its
// admission until its provider call ends, but its processed_tasks row is written only then
// (completed or failed): the rows alone never see it. So each database's synchronous calls in
// flight are counted per organization in shared memory. A call is admitted when the
// organization's tasks processing or retrying (rows: the batch runner's, anyone's; read from
// the in-flight index, tasks_in_flight.hpp) plus its
// synchronous calls in flight leave room under the cap; the other side does the same:
// _reserve_counted (the batch runner's claim, the processing-row trigger, consume_quota and
// check_limit for concurrent_tasks) adds _sync_calls_in_flight() to its count of rows.
//
// The slot is held for the call only, never past its statement: a transaction left open after
// the call holds no slot, and nothing here waits for another session. Not preloaded: a
// backend counts its own calls only.
#pragma once

#include "pg/boundary/spi.hpp"

#include <cstdint>
#include <string>

namespace celaest::pg {

// One admitted synchronous call's place in its organization's count, given back by release()
// or when it goes (an error leaving the call), at the latest when the transaction ends.
class SyncCallSlot {
 public:
  SyncCallSlot() = default;
  explicit SyncCallSlot(std::string organization_id) : organization_id_(std::move(organization_id)) {}
  SyncCallSlot(SyncCallSlot&& other) noexcept : organization_id_(std::move(other.organization_id_)) {
    other.organization_id_.clear();
  }
  SyncCallSlot& operator=(SyncCallSlot&& other) noexcept;
  SyncCallSlot(const SyncCallSlot&) = delete;
  SyncCallSlot& operator=(const SyncCallSlot&) = delete;
  ~SyncCallSlot() { release(); }

  void release() noexcept;

 private:
  std::string organization_id_;  // empty: no slot held (an unlimited cap counts nothing)
};

// Admits one synchronous call of the organization under `cap` (max_concurrent_tasks in effect;
// -1 = unlimited: nothing is counted). LC010 when the tasks processing and the synchronous calls
// in flight already fill it.
SyncCallSlot occupy_sync_call_slot(SpiSession& spi, const std::string& organization_id, int64_t cap);

// The organization's synchronous calls in flight in this database (_sync_calls_in_flight()).
int64_t sync_calls_in_flight(const std::string& organization_id);

void register_sync_call_release();   // from _PG_init: slots left by an aborted transaction
void reserve_sync_call_counts();     // from _PG_init, when preloaded

}  // namespace celaest::pg
