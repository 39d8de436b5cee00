// wait_batch() and the trigger that announces a batch's end (pg/workers/batch_ends.hpp).
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/snapshot_horizon.hpp"
#include "pg/boundary/spi.hpp"
#include "pg/workers/batch_ends.hpp"

extern "C" {
#include "utils/timestamp.h"
}

#include <algorithm>
#include <string>

using namespace celaest::pg;

namespace {

// A waiter also looks on its own now and then: an end committed by a path that announces
// nothing (a prepared transaction committed later) is still seen within this long.
constexpr long kLongestSleepMs = 1000;

}  // namespace

// wait_batch(p_batch_id uuid, p_timeout interval) RETURNS jsonb: batch_status() once the batch
// has ended or the timeout has passed. Sleeps on the batch-end announcement, not a poll.
CELAEST_FUNCTION(celaest_wait_batch) {
  auto batch_id = uuid_arg(fcinfo, 0);
  auto timeout = interval_arg(fcinfo, 1);
  SpiSession spi;
  QueryResult limit = spi.run(
      "SELECT $1::interval < interval '0', ceil(extract(epoch FROM $1::interval) * 1000)::float8::text", {timeout},
      true);
  if (!timeout || limit.at(0, 0) == Text("t"))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "timeout must be a non-negative interval, not " + timeout.value_or("NULL"));
  const double timeout_ms = std::stod(*limit.at(0, 1));
  const TimestampTz started = pg_guarded([] { return GetCurrentTimestamp(); });
  // `SELECT wait_batch(…)` alone: its statement's snapshot is never read again, so the wait
  // holds back no vacuum horizon (snapshot_horizon.hpp; README "wait_batch").
  const bool horizon_free = snapshot_horizon::statement_is_only_a_call_of(fcinfo->flinfo->fn_oid);
  for (;;) {
    batch_ends::prepare_to_wait();
    // Not read-only: each look takes a new snapshot and sees the runner's latest commits. Its
    // errors (P0002 for a batch the caller may not see) are batch_status()'s own.
    QueryResult look = spi.run(
        "SELECT s::text, s->>'status' IN ('completed', 'failed', 'cancelled')"
        " FROM celaest.batch_status($1::uuid) AS s",
        {batch_id});
    const Text status = look.at(0, 0);
    const double waited_ms =
        pg_guarded([started] { return (double)(GetCurrentTimestamp() - started) / 1000.0; });
    if (!status || look.at(0, 1) == Text("t") || waited_ms >= timeout_ms) {
      batch_ends::stop_waiting();
      if (!status) fcinfo->isnull = true;
      return status ? jsonb_datum(*status) : (Datum)0;
    }
    if (horizon_free) snapshot_horizon::release_while_waiting();
    batch_ends::sleep(std::min<long>(kLongestSleepMs, (long)(timeout_ms - waited_ms) + 1));
  }
}

// AFTER UPDATE OF status ON task_batches, for rows that reach an end: the batch's waiters are
// woken when this transaction commits.
CELAEST_FUNCTION(celaest_announce_batch_end) {
  batch_ends::announce_at_commit();
  return PointerGetDatum(nullptr);
}
