// Background workers (pg_cron's discipline): a maintenance worker (license upkeep and API-key
// health checks) and a batch runner, both in celaest.database, each unit of work in its own
// transaction, skipped while the extension is absent or the server is in recovery.
#pragma once

namespace celaest::pg::workers {

void register_all();  // RegisterBackgroundWorker for each worker (their status: worker_status.hpp)

}  // namespace celaest::pg::workers
