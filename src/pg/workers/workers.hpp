// Background workers (pg_cron's discipline): a maintenance worker (license upkeep and API-key
// health checks) and a batch runner, both in celaest.database, each unit of work in its own
// transaction, skipped while the extension is absent or the server is in recovery.
#pragma once

namespace celaest::pg::workers {

void request_shared_state();  // shared memory for worker status and key windows
void register_all();          // RegisterBackgroundWorker for each worker

}  // namespace celaest::pg::workers
