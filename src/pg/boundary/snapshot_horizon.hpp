// Letting vacuum's horizon move while a function waits (issue 12 §5: wait_batch sleeps for
// minutes). A function called in a SELECT runs under its statement's snapshot, which the portal
// keeps registered until the statement ends: the backend's xmin (pg_stat_activity.backend_xmin)
// holds vacuum back for the whole wait. A procedure would commit; a function cannot. It can
// still advertise no xmin while it sleeps when nothing will read with that snapshot again —
// README "The batch runner", wait_batch.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace celaest::pg::snapshot_horizon {

// Whether the running statement is only a call of `function` with constant arguments
// (`SELECT f(…)` or `SELECT * FROM f(…)`, nothing else in it), in READ COMMITTED (no
// transaction snapshot) and with no open cursor: then, once `function` returns, nothing reads
// with the statement's snapshot any more, and the function itself takes fresh snapshots.
bool statement_is_only_a_call_of(Oid function);

// Advertises no xmin until the next snapshot is taken (as SnapshotResetXmin does when no
// snapshot is registered). Only when statement_is_only_a_call_of() said so.
void release_while_waiting();

}  // namespace celaest::pg::snapshot_horizon
