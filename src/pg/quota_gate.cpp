#include <nlohmann/json.hpp>

#include "pg/quota_gate.hpp"

#include "pg/boundary.hpp"
#include "pg/shared_state.hpp"

extern "C" {
#include "access/xact.h"
}

#include <vector>

namespace celaest::pg {

namespace {

// Licenses admitted in the current transaction, released at its end.
std::vector<std::string>& admitted_in_transaction() {
  static std::vector<std::string> admitted;
  return admitted;
}

void release_at_transaction_end(XactEvent event, void*) {
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
  for (const auto& license_id : admitted) shared::release_inflight(license_id);
  admitted.clear();
}

}  // namespace

std::string admit_ai_request(SpiSession& spi, const Caller& caller) {
  // assert_license_usable raises LC001–LC004; check_limit reads the period's committed usage
  // (and this transaction's own charges).
  QueryResult rows = spi.run(
      "SELECT celaest.assert_license_usable($1::uuid)::text,"
      "       celaest.check_limit($1::uuid, 'ai_requests', 1)::text",
      {caller.organization_id});
  const std::string license_id = rows.at(0, 0).value_or("");
  nlohmann::json check = nlohmann::json::parse(rows.at(0, 1).value_or("{}"));
  const int64_t remaining = check.value("remaining", nlohmann::json(0)).is_number()
                                ? check["remaining"].get<int64_t>()
                                : 0;
  int64_t inflight = 0;
  if (!shared::admit_inflight(license_id, remaining, &inflight)) {
    std::string limit = check.contains("limit") ? check["limit"].dump() : "null";
    std::string used = check.contains("used") ? check["used"].dump() : "null";
    throw Error(kQuotaExceeded,
                "organization " + caller.organization_id + " has no AI requests left in this billing period",
                "limit: " + limit + ", used: " + used + ", in flight: " + std::to_string(inflight) +
                    ", requested: 1",
                "Wait for the billing period to roll over, or raise max_ai_requests_per_month.");
  }
  admitted_in_transaction().push_back(license_id);
  return license_id;
}

void charge_ai_request(SpiSession& spi, const Caller& caller, const std::string& task_id) {
  spi.run("SELECT celaest.reserve_ai_request($1::uuid, $2::uuid, $3::uuid)",
          {caller.organization_id, caller.user_id, task_id});
}

void register_quota_gate() { RegisterXactCallback(release_at_transaction_end, nullptr); }

}  // namespace celaest::pg
