// Library entry: PG_MODULE_MAGIC and _PG_init (settings, shared memory, background workers).
#include "pg/ai/key_rate_windows.hpp"
#include "pg/ai/task_record.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"
#include "pg/boundary/check_constraint_cache.hpp"
#include "pg/boundary/shmem.hpp"
#include "pg/licensing/concurrency_gate.hpp"
#include "pg/licensing/license_terms_cache.hpp"
#include "pg/licensing/quota_gate.hpp"
#include "pg/ledger/counters.hpp"
#include "pg/ledger/records.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/workers/batch_ends.hpp"
#include "pg/workers/registry.hpp"
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
    celaest::pg::register_sync_call_release();
    celaest::pg::ledger::register_callbacks();
    celaest::pg::ledger::set_commit_charger(celaest::pg::charge_records_at_commit);
    celaest::pg::cache_validity::register_callbacks();
    celaest::pg::check_constraint_cache::install();
    // Shared memory and workers exist only when preloaded (pg_cron's rule): a plain LOAD still
    // gives every SQL function, minus the background work.
    if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
      // Each concern its own segment and lock (shmem.hpp; the workers' registry has its own).
      celaest::pg::key_rate_windows::reserve_shared_memory();
      celaest::pg::reserve_inflight_counts();
      celaest::pg::reserve_sync_call_counts();
      celaest::pg::ledger::reserve_shared_memory();
      celaest::pg::license_terms_cache::reserve_shared_memory();
      celaest::pg::cache_validity::reserve_shared_memory();
      celaest::pg::batch_ends::reserve_shared_memory();
      celaest::pg::shmem::install_hooks();
      celaest::pg::workers::request_registry();
      celaest::pg::workers::register_all();
    }
  });
}
