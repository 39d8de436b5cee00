#include "pg/boundary/cache_validity.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "port/atomics.h"
}

namespace celaest::pg::cache_validity {

namespace {

// One generation per domain, so that a busy table of one domain does not empty the caches of
// another. Bumped and read without a lock (atomics): the segment's lock goes unused.
struct Generations {
  pg_atomic_uint64 of_domain[kDomains];
};

void start_at_one(Generations& generations) {
  for (auto& generation : generations.of_domain) pg_atomic_init_u64(&generation, 1);
}

shmem::Segment<Generations> generations_segment("celaest cache generations", start_at_one);

// nullopt without shared memory: then no backend can tell another's change, and nothing may
// be cached.
std::optional<uint64_t> generation(int domain) {
  Generations* generations = generations_segment.shared();
  if (!generations) return std::nullopt;
  return pg_atomic_read_u64(&generations->of_domain[domain]);
}

void bump_generation(int domain) {
  if (Generations* generations = generations_segment.shared())
    pg_atomic_fetch_add_u64(&generations->of_domain[domain], 1);
}

bool changed_in_transaction[kDomains] = {};

void at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("cache invalidation", on_failure_at(event), [&] {
    const bool committed =
        event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE;
    const bool aborted = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
    if (!committed && !aborted) return;
    for (int domain = 0; domain < kDomains; ++domain) {
      // XACT_EVENT_COMMIT comes after the commit is visible to new snapshots: a backend that
      // reads the new generation and then the rows sees the change. (A prepared transaction
      // commits later, elsewhere; bumping at PREPARE is the best this backend can do.)
      if (committed && changed_in_transaction[domain]) bump_generation(domain);
      changed_in_transaction[domain] = false;
    }
  });
}

}  // namespace

std::optional<uint64_t> current(Domain domain) {
  const int index = static_cast<int>(domain);
  if (changed_in_transaction[index] || IsolationUsesXactSnapshot() || RecoveryInProgress()) return std::nullopt;
  return generation(index);
}

void note_change(Domain domain) { changed_in_transaction[static_cast<int>(domain)] = true; }

void register_callbacks() { RegisterXactCallback(at_transaction_end, nullptr); }

void reserve_shared_memory() { generations_segment.reserve(); }

}  // namespace celaest::pg::cache_validity
