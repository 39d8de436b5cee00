#include "pg/boundary/cache_validity.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shared_state.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
}

namespace celaest::pg::cache_validity {

namespace {

bool changed_in_transaction[shared::kCacheDomains] = {};

void at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("cache invalidation", on_failure_at(event), [&] {
    const bool committed =
        event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE;
    const bool aborted = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
    if (!committed && !aborted) return;
    for (int domain = 0; domain < shared::kCacheDomains; ++domain) {
      // XACT_EVENT_COMMIT comes after the commit is visible to new snapshots: a backend that
      // reads the new generation and then the rows sees the change. (A prepared transaction
      // commits later, elsewhere; bumping at PREPARE is the best this backend can do.)
      if (committed && changed_in_transaction[domain]) shared::bump_cache_generation(domain);
      changed_in_transaction[domain] = false;
    }
  });
}

}  // namespace

std::optional<uint64_t> current(Domain domain) {
  const int index = static_cast<int>(domain);
  if (changed_in_transaction[index] || IsolationUsesXactSnapshot() || RecoveryInProgress()) return std::nullopt;
  return shared::cache_generation(index);
}

void note_change(Domain domain) { changed_in_transaction[static_cast<int>(domain)] = true; }

void register_callbacks() { RegisterXactCallback(at_transaction_end, nullptr); }

}  // namespace celaest::pg::cache_validity
