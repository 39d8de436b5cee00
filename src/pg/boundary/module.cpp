// Library entry: PG_MODULE_MAGIC and _PG_init (settings, shared memory, background workers).
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"
#include "pg/licensing/quota_gate.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/workers/workers.hpp"

extern "C" {
#include "miscadmin.h"
PG_MODULE_MAGIC;
}

// An error here is an ERROR: during shared_preload_libraries the postmaster stops with it (a
// broken setup must not start half-working); during a plain LOAD the statement fails.
extern "C" PGDLLEXPORT void _PG_init(void) {
  celaest::pg::run_entry_point("_PG_init", celaest::pg::OnFailure::RaiseError, [] {
    celaest::pg::settings::define_all();
    celaest::pg::register_quota_gate();
    celaest::pg::cache_validity::register_callbacks();
    // Shared memory and workers exist only when preloaded (pg_cron's rule): a plain LOAD still
    // gives every SQL function, minus the background work.
    if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
      celaest::pg::workers::request_shared_state();
      celaest::pg::workers::register_all();
    }
  });
}
