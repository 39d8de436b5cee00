// The AI-request quota of an organization on the hot path: read it (check_limit, the AI
// calls' admission) and charge it (consume_quota, the AI calls' charge) with one statement
// each. Which license is in force and its effective cap come from a copy in shared memory
// (cache_validity.hpp), read with the owner's rights; the counter, status, expiry and
// period are read or written by the statement itself, so the answer is as exact as the SQL
// functions'.
//
// Every function answers only the common case and returns nullopt for the rest (no
// license in force, a trial past its end, a period to roll, a refusal, an unusable cache);
// the caller then takes the general SQL path, which gives the same answer or raises the
// contract's error. The per-call reads and writes run with the caller's rights (row-level
// security, privileges): a caller who may not see or change the license gets the general
// path's answer.
#pragma once

#include "pg/licensing/license_row.hpp"
#include "pg/boundary/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace celaest::pg {

struct AiQuota {
  std::string license_id;
  std::string code;  // VALID, SUSPENDED, EXPIRED, TRIAL_EXPIRED
  int64_t limit = -1;  // -1 = unlimited
  int64_t used = 0;    // in the current period
  int64_t concurrent_cap = -1;  // max_concurrent_tasks in effect (-1 = unlimited)
};

// The organization's AI-request quota as check_limit reports it, read with `snapshot`.
std::optional<AiQuota> read_ai_quota(SpiSession& spi, const std::string& organization_id, RowSnapshot snapshot);

struct AiCharge {
  std::string license_id;
  int64_t remaining = -1;  // after the charge; -1 = unlimited
  int64_t used = 0;        // the row's counter after the charge
  int64_t limit = -1;      // the effective cap; -1 = unlimited
  Text period_start, period_end;  // with ChargePeriod::Returned only
};
enum class ChargePeriod { Returned, NotNeeded };

// Charges `amount` AI requests if the license is usable and has room; atomic and exact under
// concurrency (a conditional UPDATE, re-checked on the latest row version). `pending`: AI
// requests the row does not hold yet (the ledger's, ledger/counters.hpp) that the room must
// leave out.
std::optional<AiCharge> charge_ai_requests(SpiSession& spi, const std::string& organization_id, int64_t amount,
                                           ChargePeriod with_period, int64_t pending = 0);
// The id of the organization's license in force, from the shared terms (nullopt: none, or no
// usable copy; the general path answers).
std::optional<std::string> license_in_force(const std::string& organization_id);

// Whether `metric` (as check_limit/consume_quota accept it) names the AI-request counter.
bool is_ai_request_metric(const std::string& metric);

}  // namespace celaest::pg
