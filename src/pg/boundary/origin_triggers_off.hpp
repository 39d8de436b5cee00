// Runs one piece of work with the triggers of ordinary ("origin") mode off: the setting
// session_replication_role is replica for its duration only (a GUC nest level of its own, as
// a function's SET clause makes one), then back to what it was. Triggers enabled ALWAYS or
// REPLICA still fire. The caller proves that skipping the others changes nothing (see
// submit_batch: the per-row foreign-key checks of rows whose references this transaction has
// already checked and locked).
//
// Changing the setting resets the session's plan cache (PostgreSQL does that for this
// setting), twice: the next statements of the session are planned again.
#pragma once

#include <functional>

namespace celaest::pg {

void with_origin_triggers_off(const std::function<void()>& work);

}  // namespace celaest::pg
