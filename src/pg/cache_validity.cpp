#include "pg/cache_validity.hpp"

#include "pg/boundary.hpp"
#include "pg/shared_state.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
}

namespace celaest::pg::cache_validity {

namespace {

bool changed_in_transaction = false;

void at_transaction_end(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE:
      // XACT_EVENT_COMMIT comes after the commit is visible to new snapshots: a backend that
      // reads the new generation and then the rows sees the change. (A prepared transaction
      // commits later, elsewhere; bumping at PREPARE is the best this backend can do.)
      if (changed_in_transaction) shared::bump_cache_generation();
      changed_in_transaction = false;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      changed_in_transaction = false;
      break;
    default:
      break;
  }
}

}  // namespace

std::optional<uint64_t> current() {
  if (changed_in_transaction || IsolationUsesXactSnapshot()) return std::nullopt;
  return shared::cache_generation();
}

void note_change() { changed_in_transaction = true; }

void register_callbacks() { RegisterXactCallback(at_transaction_end, nullptr); }

}  // namespace celaest::pg::cache_validity

// Statement-level trigger on the tables that per-backend caches copy (module 78).
CELAEST_FUNCTION(celaest_cached_data_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw celaest::pg::Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                             "celaest._cached_data_changed() must be called as a trigger");
  celaest::pg::cache_validity::note_change();
  return PointerGetDatum(nullptr);
}
