// Background workers (pg_cron's discipline), one set per database the launcher serves
// (launcher.hpp): a maintenance worker (license upkeep and API-key health checks) and a batch
// runner, each unit of work in its own transaction, skipped in recovery; a worker whose
// database has no extension (any more) exits and is not restarted until CREATE EXTENSION.
#pragma once

namespace celaest::pg::workers {

void register_all();  // the launcher, and the utility hook that frees databases for DDL

}  // namespace celaest::pg::workers
