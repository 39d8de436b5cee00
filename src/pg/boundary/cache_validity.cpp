#include "pg/boundary/cache_validity.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/trigger.h"
#include "port/atomics.h"
}

#include <cstring>

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

void at_transaction_end(XactEvent event, void*) {
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

// Statement-level trigger on the tables that caches copy (module 78); its argument names the
// domain: licensing, routing or identity.
CELAEST_FUNCTION(celaest_cached_data_changed) {
  using celaest::pg::Error;
  using celaest::pg::cache_validity::Domain;
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._cached_data_changed() must be called as a trigger");
  const Trigger* trigger = reinterpret_cast<TriggerData*>(fcinfo->context)->tg_trigger;
  const char* domain = trigger->tgnargs == 1 ? trigger->tgargs[0] : "";
  if (std::strcmp(domain, "licensing") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Licensing);
  } else if (std::strcmp(domain, "routing") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Routing);
  } else if (std::strcmp(domain, "identity") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Identity);
  } else {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                std::string("celaest._cached_data_changed(): unknown cache domain \"") + domain + "\"", "",
                "The trigger argument is licensing, routing or identity.");
  }
  return PointerGetDatum(nullptr);
}
