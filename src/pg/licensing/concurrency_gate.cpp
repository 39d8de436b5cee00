#include "pg/licensing/concurrency_gate.hpp"
#include "pg/licensing/tasks_in_flight.hpp"

#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
}

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

namespace celaest::pg {

namespace {

// "<database oid>:<organization uuid>": a cloned database keeps its own organizations' count.
using OrganizationKeyText = core::FixedText<48>;

struct SyncCalls {
  OrganizationKeyText organization;
  int64_t in_flight;
};

using SyncCallTable = core::FixedHashTable<SyncCalls, core::TextKeyPolicy<SyncCalls, &SyncCalls::organization>>;

// Organizations with synchronous calls in flight at once (an entry goes when its count drops to
// zero). A full table admits a further organization's call on its rows alone, uncounted, as the
// AI-request in-flight table does.
constexpr size_t kSyncCallSlots = 1024;

struct SyncCallCounts {
  SyncCallTable::Cell cells[kSyncCallSlots];
};

shmem::Segment<SyncCallCounts> segment("celaest synchronous calls in flight");

std::string key_of(const std::string& organization_id) {
  return std::to_string(MyDatabaseId) + ":" + organization_id;
}

// The organizations of this backend's slots not given back yet: the transaction's end gives
// them back when no SyncCallSlot could (a FATAL leaving the call skips C++ destructors).
std::vector<std::string>& held_by_backend() {
  static std::vector<std::string> held;
  return held;
}

void give_back(const std::string& organization_id) {
  auto& held = held_by_backend();
  auto found = std::find(held.begin(), held.end(), organization_id);
  if (found == held.end()) return;  // given back already (at the transaction's end)
  held.erase(found);
  const std::string key = key_of(organization_id);
  segment.locked(LW_EXCLUSIVE, [&](SyncCallCounts& counts) {
    SyncCallTable table(counts.cells, kSyncCallSlots);
    SyncCalls* entry = table.find(key);
    if (entry && --entry->in_flight <= 0) table.erase(key);
  });
}

void give_back_at_transaction_end(XactEvent event, void*) noexcept {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
    return;
  if (held_by_backend().empty()) return;
  run_entry_point("synchronous call slots", on_failure_at(event), [] {
    while (!held_by_backend().empty()) give_back(held_by_backend().back());
  });
}

}  // namespace

SyncCallSlot& SyncCallSlot::operator=(SyncCallSlot&& other) noexcept {
  if (this != &other) {
    release();
    organization_id_ = std::move(other.organization_id_);
    other.organization_id_.clear();
  }
  return *this;
}

void SyncCallSlot::release() noexcept {
  if (organization_id_.empty()) return;
  const std::string organization_id = std::move(organization_id_);
  organization_id_.clear();
  try {
    give_back(organization_id);
  } catch (...) {
    // Only LWLockAcquire could fail here; the transaction's end gives the slot back then.
  }
}

SyncCallSlot occupy_sync_call_slot(SpiSession& spi, const std::string& organization_id, int64_t cap) {
  if (cap < 0) return SyncCallSlot();
  // The rows in flight with the latest committed state (not a snapshot taken before a batch
  // claim committed); by query when the index cannot be read directly.
  int64_t processing = 0;
  if (std::optional<int64_t> counted = tasks_in_flight(organization_id)) {
    processing = *counted;
  } else {
    Text rows = spi.scalar(
        "SELECT count(*) FROM celaest.processed_tasks AS t"
        " WHERE t.organization_id = $1::uuid AND t.status IN ('processing', 'retrying')",
        {organization_id});
    processing = rows ? std::stoll(*rows) : 0;
  }
  const std::string key = key_of(organization_id);
  int64_t synchronous = 0;
  const bool admitted = segment.locked(LW_EXCLUSIVE, [&](SyncCallCounts& counts) {
    SyncCallTable table(counts.cells, kSyncCallSlots);
    SyncCallTable::Place place = table.insert(key);
    synchronous = place.slot ? place.slot->in_flight : 0;
    if (processing + synchronous + 1 > cap) {
      if (place.outcome == SyncCallTable::Outcome::Inserted) table.erase(key);
      return false;
    }
    if (place.slot) ++place.slot->in_flight;
    return place.slot != nullptr;
  });
  if (!admitted && processing + synchronous + 1 > cap)
    throw Error(kQuotaExceeded, "organization " + organization_id + " has reached its max_concurrent_tasks limit",
                "limit: " + std::to_string(cap) + ", used: " + std::to_string(processing + synchronous) +
                    " (tasks processing: " + std::to_string(processing) +
                    ", synchronous calls in flight: " + std::to_string(synchronous) + "), requested: 1",
                "Wait for a running task or call to finish, or raise max_concurrent_tasks.");
  if (!admitted) return SyncCallSlot();  // the table is full: admitted on the rows alone
  held_by_backend().push_back(organization_id);
  return SyncCallSlot(organization_id);
}

int64_t sync_calls_in_flight(const std::string& organization_id) {
  const std::string key = key_of(organization_id);
  return segment.locked(LW_SHARED, [&](SyncCallCounts& counts) -> int64_t {
    SyncCallTable table(counts.cells, kSyncCallSlots);
    const SyncCalls* entry = table.find(key);
    return entry ? entry->in_flight : 0;
  });
}

void register_sync_call_release() { RegisterXactCallback(give_back_at_transaction_end, nullptr); }

void reserve_sync_call_counts() { segment.reserve(); }

}  // namespace celaest::pg
