// The AI-request quota around a synchronous call (run_prompt, ai_chat).
//
// Charging the license before the call would hold the license row lock for the whole
// provider call and serialize every call of an organization. Instead: admit before the call
// against the committed usage plus the calls of that license still in flight (shared memory),
// and charge after the call, in the caller's transaction. An admitted request stays counted
// as in flight until its transaction ends, so concurrent calls can never overshoot.
#pragma once

#include "pg/identity/caller.hpp"
#include "pg/boundary/spi.hpp"

#include <string>

namespace celaest::pg {

// LC001–LC004 when the license is not usable, LC010 when no request is left; returns the
// license id.
std::string admit_ai_request(SpiSession& spi, const Caller& caller);
// Charges the admitted request (license_usage_log row with the task).
void charge_ai_request(SpiSession& spi, const Caller& caller, const std::string& task_id);
// Releases the in-flight admissions when the transaction ends (from _PG_init).
void register_quota_gate();
// The in-flight counts' shared memory (from _PG_init, when preloaded).
void reserve_inflight_counts();

}  // namespace celaest::pg
