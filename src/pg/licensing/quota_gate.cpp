#include <nlohmann/json.hpp>

#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include "pg/licensing/quota_gate.hpp"

#include "pg/licensing/license_quota.hpp"
#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "access/xact.h"
}

#include <algorithm>
#include <string_view>
#include <vector>

namespace celaest::pg {

namespace {

// AI requests of each license admitted but not yet committed, in shared memory: admission
// counts them, so concurrent calls of one organization never overshoot the quota while none
// of them holds the license row lock during its provider call. A license's entry goes when
// its count drops to zero. Not preloaded: this backend's own calls only.
struct InflightCount {
  core::FixedText<37> license_id;
  int64_t count;
};

using InflightTable =
    core::FixedHashTable<InflightCount, core::TextKeyPolicy<InflightCount, &InflightCount::license_id>>;

// Licenses with AI calls in flight at once. When every slot is taken, a further license's
// call is admitted on its committed usage alone (uncounted), as a full table always was.
constexpr size_t kInflightSlots = 1024;

struct InflightCounts {
  InflightTable::Cell cells[kInflightSlots];
};

shmem::Segment<InflightCounts> inflight_segment("celaest license in-flight counts");

// Admits when inflight + 1 <= remaining (remaining < 0 = unlimited); *inflight is the count
// seen before admission.
bool admit_inflight(const std::string& license_id, int64_t remaining, int64_t* inflight) {
  return inflight_segment.locked(LW_EXCLUSIVE, [&](InflightCounts& counts) {
    InflightTable table(counts.cells, kInflightSlots);
    InflightTable::Place place = table.insert(license_id);
    *inflight = place.slot ? place.slot->count : 0;
    if (remaining >= 0 && *inflight + 1 > remaining) {
      if (place.outcome == InflightTable::Outcome::Inserted) table.erase(license_id);
      return false;
    }
    if (place.slot) ++place.slot->count;
    return true;
  });
}

void release_inflight(const std::string& license_id) {
  inflight_segment.locked(LW_EXCLUSIVE, [&](InflightCounts& counts) {
    InflightTable table(counts.cells, kInflightSlots);
    InflightCount* entry = table.find(license_id);
    if (entry && --entry->count <= 0) table.erase(license_id);
  });
}

// Licenses admitted in the current transaction, released at its end.
std::vector<std::string>& admitted_in_transaction() {
  static std::vector<std::string> admitted;
  return admitted;
}
// Served databases: requests admitted by the ledger and neither charged nor released yet (a
// call that ended with an error); released at the transaction's end at the latest.
std::vector<std::string>& admitted_by_ledger() {
  static std::vector<std::string> admitted;
  return admitted;
}

void release_at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("in-flight quota release", on_failure_at(event), [&] {
    switch (event) {
      case XACT_EVENT_COMMIT:
      case XACT_EVENT_PARALLEL_COMMIT:
      case XACT_EVENT_ABORT:
      case XACT_EVENT_PARALLEL_ABORT:
      case XACT_EVENT_PREPARE:
        break;
      default:
        return;
    }
    auto& admitted = admitted_in_transaction();
    for (const auto& license_id : admitted) release_inflight(license_id);
    admitted.clear();
    auto& by_ledger = admitted_by_ledger();
    for (const auto& license_id : by_ledger) ledger::release_request(license_id);
    by_ledger.clear();
  });
}

// The period's quota as check_limit reports it: the fast path (license_quota.hpp) when the
// license is usable, else the SQL functions, which raise LC001–LC004 for an unusable one.
AiQuota usable_quota(SpiSession& spi, const Caller& caller) {
  std::optional<AiQuota> quota = read_ai_quota(spi, caller.organization_id, RowSnapshot::Latest);
  if (quota && quota->code == "VALID") return *quota;
  QueryResult rows = spi.run(
      "SELECT celaest._assert_license_usable($1::uuid)::text,"
      "       celaest.check_limit($1::uuid, 'ai_requests', 1)::text,"
      "       celaest.check_limit($1::uuid, 'concurrent_tasks', 1)->>'limit'",
      {caller.organization_id});
  nlohmann::json check = nlohmann::json::parse(rows.at(0, 1).value_or("{}"));
  auto number = [&](const char* field) {
    return check.contains(field) && check[field].is_number() ? check[field].get<int64_t>() : int64_t{0};
  };
  const Text concurrent_cap = rows.at(0, 2);
  return AiQuota{rows.at(0, 0).value_or(""), "VALID", number("limit"), number("used"),
                 concurrent_cap ? std::stoll(*concurrent_cap) : -1};
}

}  // namespace

namespace {

[[noreturn]] void refuse(const Caller& caller, const AiQuota& quota, const std::string& figures) {
  throw Error(kQuotaExceeded,
              "organization " + caller.organization_id + " has no AI requests left in this billing period",
              "limit: " + std::to_string(quota.limit) + ", " + figures + ", requested: 1",
              "Wait for the billing period to roll over, or raise max_ai_requests_per_month.");
}

}  // namespace

AdmittedCall admit_ai_request(SpiSession& spi, const Caller& caller) {
  const AiQuota quota = usable_quota(spi, caller);
  // Its place among the tasks processing first: a refusal there admits no AI request (given
  // back when the call ends, or by the destructor when an error leaves before).
  SyncCallSlot slot = occupy_sync_call_slot(spi, caller.organization_id, quota.concurrent_cap);
  if (ledger::served()) {
    // The row again, with a fresh snapshot and under the ledger's lock (counters.hpp).
    auto read_used = [&]() -> int64_t {
      std::optional<AiQuota> fresh = read_ai_quota(spi, caller.organization_id, RowSnapshot::Latest);
      return fresh && fresh->license_id == quota.license_id ? fresh->used : quota.used;
    };
    int64_t seen = 0;
    if (!ledger::admit_request(quota.license_id, quota.limit, read_used, &seen))
      refuse(caller, quota, "used (with calls in flight and charges not yet folded): " + std::to_string(seen));
    admitted_by_ledger().push_back(quota.license_id);
    return AdmittedCall{quota.license_id, std::move(slot)};
  }
  const int64_t remaining = quota.limit < 0 ? -1 : std::max<int64_t>(quota.limit - quota.used, 0);
  int64_t inflight = 0;
  if (!admit_inflight(quota.license_id, remaining, &inflight))
    refuse(caller, quota, "used: " + std::to_string(quota.used) + ", in flight: " + std::to_string(inflight));
  admitted_in_transaction().push_back(quota.license_id);
  return AdmittedCall{quota.license_id, std::move(slot)};
}

namespace {

bool forget_ledger_admission(const std::string& license_id) {
  auto& admitted = admitted_by_ledger();
  auto found = std::find(admitted.begin(), admitted.end(), license_id);
  if (found == admitted.end()) return false;
  admitted.erase(found);
  return true;
}

}  // namespace

bool charge_admitted_request(const std::string& license_id) {
  if (!forget_ledger_admission(license_id)) return false;
  if (ledger::charge_request(license_id)) return true;
  ledger::release_request(license_id);
  ledger::warn_full("license");
  return false;
}

void release_admitted_request(const std::string& license_id) {
  if (forget_ledger_admission(license_id)) ledger::release_request(license_id);
}

void charge_ai_request(SpiSession& spi, const Caller& caller) {
  // No license_usage_log row per call (API.md: the period's close sums the counter).
  if (charge_ai_requests(spi, caller.organization_id, 1, ChargePeriod::NotNeeded)) return;
  // Refused, a period to roll, no cached terms: the SQL function charges or raises.
  spi.run("SELECT celaest._reserve_ai_request($1::uuid, $2::uuid)", {caller.organization_id, caller.user_id});
}

void register_quota_gate() { RegisterXactCallback(release_at_transaction_end, nullptr); }

void reserve_inflight_counts() { inflight_segment.reserve(); }

}  // namespace celaest::pg
