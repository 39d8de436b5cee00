// check_limit() and consume_quota() (API.md "Licenses and limits"): the AI-request counter
// of an organization whose license is in force answers from license_quota.hpp in one
// statement; every other case (other metrics, no license in force, refusals, bad
// arguments) goes to the general SQL path of src/sql/24_licensing_quota.sql, which owns the
// rules and the errors.
#include "core/quota.hpp"

#include "pg/licensing/concurrency_gate.hpp"
#include "pg/licensing/license_quota.hpp"
#include "pg/licensing/spending_rights.hpp"
#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/function_owner.hpp"

extern "C" {
#include "access/xact.h"
}

#include <vector>

namespace core = celaest::core;
using namespace celaest::pg;

namespace {

struct QuotaArguments {
  std::optional<std::string> organization_id, metric;
  std::optional<long long> amount;

  bool fast_path_applies() const {
    return organization_id && metric && amount && *amount >= 0 && is_ai_request_metric(*metric);
  }
  std::vector<Text> as_params() const {
    return {organization_id, metric, amount ? Text(std::to_string(*amount)) : Text()};
  }
};

QuotaArguments quota_arguments(FunctionCallInfo fcinfo) {
  return {uuid_arg(fcinfo, 0), text_arg(fcinfo, 1), int_arg(fcinfo, 2)};
}

// consume_quota() grants published to the ledger (counters.hpp), taken back when the
// transaction ends: committed, they are in the row; rolled back, they never were.
struct OpenGrant {
  std::string license_id;
  int64_t amount;
};
std::vector<OpenGrant>& open_grants() {
  static std::vector<OpenGrant> grants;
  return grants;
}
void close_grants_at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("consume_quota grants", on_failure_at(event), [&] {
    if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_ABORT &&
        event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
      return;
    for (const OpenGrant& grant : open_grants()) ledger::close_consumption(grant.license_id, grant.amount);
    open_grants().clear();
  });
}

int64_t own_open_grants(const std::string& license_id) {
  int64_t own = 0;
  for (const OpenGrant& grant : open_grants())
    if (grant.license_id == license_id) own += grant.amount;
  return own;
}

// Served database (README "The ledger", "Admission stays exact"). Fast path: the conditional
// UPDATE (room in the row alone), then, holding the row, the check against the row plus what
// the ledger holds and the grant's publication, in one step under the ledger's lock (AI
// admissions count published grants while the caller's transaction is open). No room once the
// ledger is counted: the UPDATE is undone (the row is still ours) and the general path answers.
// The general path publishes first and reads the ledger's figure in its UPDATE's condition,
// i.e. when it holds the row. nullopt: no license in force (the general path answers).
void ensure_grant_callback() {
  static bool callback = false;
  if (callback) return;
  pg_guarded([] { RegisterXactCallback(close_grants_at_transaction_end, nullptr); });
  callback = true;
}

std::optional<int64_t> consume_with_ledger(SpiSession& spi, const QuotaArguments& args) {
  const std::string& organization_id = *args.organization_id;
  const int64_t amount = *args.amount;
  ensure_grant_callback();
  if (std::optional<AiCharge> charge = charge_ai_requests(spi, organization_id, amount, ChargePeriod::NotNeeded)) {
    if (charge->limit < 0) return int64_t{-1};  // unlimited: nothing to share
    int64_t pending = 0;
    switch (ledger::publish_consumption(charge->license_id, amount, charge->used, charge->limit, &pending)) {
      case ledger::ConsumptionCheck::Published:
        open_grants().push_back({charge->license_id, amount});
        return charge->limit - charge->used - pending;
      case ledger::ConsumptionCheck::TableFull:
        return charge->remaining;
      case ledger::ConsumptionCheck::NoRoom:
        spi.run("UPDATE celaest.licenses SET ai_requests_used = ai_requests_used - $2::bigint WHERE id = $1::uuid",
                {charge->license_id, std::to_string(amount)});
        break;
    }
  }
  // Refused by the row, or no room once the ledger is counted: the license in force is looked
  // up only now (the fast path's UPDATE read the same shared terms).
  std::optional<std::string> license = license_in_force(organization_id);
  if (!license) return std::nullopt;
  const bool published = ledger::open_consumption(*license, amount);
  try {
    Text remaining = spi.scalar("SELECT (celaest._take_quota($1::uuid, $2, $3::bigint)).remaining", args.as_params());
    if (!remaining) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: _take_quota returned no remaining quota");
    if (published) open_grants().push_back({*license, amount});
    return std::stoll(*remaining);
  } catch (...) {
    if (published) ledger::close_consumption(*license, amount);
    throw;
  }
}

}  // namespace

// check_limit(p_org_id uuid, p_limit text, p_amount bigint DEFAULT 1) RETURNS jsonb
CELAEST_FUNCTION(celaest_check_limit) {
  const QuotaArguments args = quota_arguments(fcinfo);
  SpiSession spi;
  if (args.fast_path_applies()) {
    if (std::optional<AiQuota> quota = read_ai_quota(spi, *args.organization_id, RowSnapshot::Statement)) {
      if (ledger::served()) {
        // The row again with a fresh snapshot, and what the ledger holds, under its lock.
        const std::string organization_id = *args.organization_id;
        const int64_t row_used = quota->used;
        // Grants of other transactions still open (consume_quota, submit_batch's reservations)
        // count as used; this transaction's own are already in the row it reads.
        quota->used = ledger::used_with_pending(
                          quota->license_id,
                          [&]() -> int64_t {
                            std::optional<AiQuota> fresh = read_ai_quota(spi, organization_id, RowSnapshot::Latest);
                            return fresh ? fresh->used : row_used;
                          },
                          true) -
                      own_open_grants(quota->license_id);
      }
      return jsonb_datum(core::quota_answer_json(core::answer_quota(quota->code, quota->limit, quota->used, *args.amount)));
    }
  }
  Text answer = spi.scalar("SELECT celaest._check_limit_general($1::uuid, $2, $3::bigint)", args.as_params(), true);
  return jsonb_datum(answer.value_or("null"));
}

// consume_quota(p_org_id uuid, p_metric text DEFAULT 'ai_requests', p_amount bigint DEFAULT 1)
//   RETURNS bigint
CELAEST_FUNCTION(celaest_consume_quota) {
  const QuotaArguments args = quota_arguments(fcinfo);
  // Who may spend for the organization (spending_rights.hpp): 42501 before anything is read,
  // or the charge made as the owner for a user who may spend but not write licenses. Both
  // paths below then run unchanged, so the charge is as exact as any other. (A NULL
  // organization goes on to the general path's 22004.)
  std::optional<RunAsOwner> as_owner;
  if (args.organization_id &&
      spending_rights(*args.organization_id, "consume_quota", fcinfo->flinfo->fn_oid) == SpendAs::Owner)
    as_owner.emplace(function_owner(fcinfo->flinfo->fn_oid));
  SpiSession spi;
  if (args.fast_path_applies()) {
    if (ledger::served()) {
      if (std::optional<int64_t> remaining = consume_with_ledger(spi, args)) return Int64GetDatum(*remaining);
    } else if (std::optional<AiCharge> charge =
                   charge_ai_requests(spi, *args.organization_id, *args.amount, ChargePeriod::NotNeeded)) {
      return Int64GetDatum(charge->remaining);
    }
  }
  Text remaining = spi.scalar("SELECT (celaest._take_quota($1::uuid, $2, $3::bigint)).remaining", args.as_params());
  if (!remaining) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: _take_quota returned no remaining quota");
  return Int64GetDatum(std::stoll(*remaining));
}

// _ai_requests_pending(p_license_id uuid) RETURNS bigint: what licenses.ai_requests_used does
// not hold yet (src/sql/24_licensing_quota.sql; the general paths add it).
CELAEST_FUNCTION(celaest_ai_requests_pending) {
  std::optional<std::string> license = uuid_arg(fcinfo, 0);
  if (!license || !ledger::served()) return Int64GetDatum(0);
  return Int64GetDatum(ledger::pending_requests(*license, false));
}

// _sync_calls_in_flight(p_org_id uuid) RETURNS bigint: the organization's synchronous calls
// (run_prompt, ai_chat) in flight in this database, which no processed_tasks row shows yet
// (pg/licensing/concurrency_gate.hpp; the counts of max_concurrent_tasks add it).
CELAEST_FUNCTION(celaest_sync_calls_in_flight) {
  std::optional<std::string> organization = uuid_arg(fcinfo, 0);
  if (!organization) return Int64GetDatum(0);
  return Int64GetDatum(celaest::pg::sync_calls_in_flight(*organization));
}
