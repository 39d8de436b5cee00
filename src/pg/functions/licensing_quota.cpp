// check_limit() and consume_quota() (API.md "Licenses and limits"): the AI-request counter
// of an organization whose license is in force answers from license_quota.hpp in one
// statement; every other case (other metrics, no license in force, refusals, bad
// arguments) goes to the general SQL path of src/sql/24_licensing_quota.sql, which owns the
// rules and the errors.
#include "core/quota.hpp"

#include "pg/licensing/license_quota.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

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

}  // namespace

// check_limit(p_org_id uuid, p_limit text, p_amount bigint DEFAULT 1) RETURNS jsonb
CELAEST_FUNCTION(celaest_check_limit) {
  const QuotaArguments args = quota_arguments(fcinfo);
  SpiSession spi;
  if (args.fast_path_applies()) {
    if (std::optional<AiQuota> quota = read_ai_quota(spi, *args.organization_id, RowSnapshot::Statement))
      return jsonb_datum(core::quota_answer_json(core::answer_quota(quota->code, quota->limit, quota->used, *args.amount)));
  }
  Text answer = spi.scalar("SELECT celaest._check_limit_general($1::uuid, $2, $3::bigint)", args.as_params(), true);
  return jsonb_datum(answer.value_or("null"));
}

// consume_quota(p_org_id uuid, p_metric text DEFAULT 'ai_requests', p_amount bigint DEFAULT 1)
//   RETURNS bigint
CELAEST_FUNCTION(celaest_consume_quota) {
  const QuotaArguments args = quota_arguments(fcinfo);
  SpiSession spi;
  if (args.fast_path_applies()) {
    if (std::optional<AiCharge> charge = charge_ai_requests(spi, *args.organization_id, *args.amount, ChargePeriod::NotNeeded))
      return Int64GetDatum(charge->remaining);
  }
  Text remaining = spi.scalar("SELECT (celaest._take_quota($1::uuid, $2, $3::bigint)).remaining", args.as_params());
  if (!remaining) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: _take_quota returned no remaining quota");
  return Int64GetDatum(std::stoll(*remaining));
}
