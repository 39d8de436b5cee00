// The AI-request quota around a synchronous call (run_prompt, ai_chat).
//
// Charging the license before the call would hold the license row lock for the whole
// provider call and serialize every call of an organization. Instead: admit before the call
// against the committed usage plus the calls of that license still in flight (shared memory),
// and charge after the call — in the ledger's shared memory where a ledger writer serves the
// database (README "The ledger"), else in the caller's transaction. An admitted request stays
// counted as in flight until it is charged (served) or its transaction ends, so concurrent
// calls can never overshoot.
#pragma once

#include "pg/identity/caller.hpp"
#include "pg/licensing/concurrency_gate.hpp"
#include "pg/boundary/spi.hpp"

#include <string>

namespace celaest::pg {

// An admitted call: the license charged for it, and its place among the organization's tasks
// processing at once (concurrency_gate.hpp), held until the call ends.
struct AdmittedCall {
  std::string license_id;
  SyncCallSlot slot;
};

// LC001–LC004 when the license is not usable, LC010 when no request is left or the
// organization's max_concurrent_tasks is filled.
//
// In a database the ledger serves (ledger/counters.hpp), admission counts the row plus the
// ledger's unfolded charges, the requests in flight and open consume_quota() grants, and the
// charge goes to the ledger's shared memory: no license row is written by the call. Otherwise,
// as before: the charge is an UPDATE in the caller's transaction.
AdmittedCall admit_ai_request(SpiSession& spi, const Caller& caller);
// Served: moves the admitted request from in flight to charged, in shared memory. false: it
// could not (the ledger's table is full, or the database is not served): charge_ai_request().
bool charge_admitted_request(const std::string& license_id);
// Served: the admitted request reached no provider; it is no longer counted.
void release_admitted_request(const std::string& license_id);
// Charges the admitted request in the caller's transaction (the license's counter only: no
// license_usage_log row per call).
void charge_ai_request(SpiSession& spi, const Caller& caller);
// Releases the in-flight admissions when the transaction ends (from _PG_init).
void register_quota_gate();
// The in-flight counts' shared memory (from _PG_init, when preloaded).
void reserve_inflight_counts();

}  // namespace celaest::pg
