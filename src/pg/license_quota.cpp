#include "core/license_state.hpp"

#include "pg/license_quota.hpp"
#include "pg/license_row.hpp"

#include "pg/boundary.hpp"
#include "pg/cache_validity.hpp"

#include <limits>
#include <unordered_map>

namespace celaest::pg {

namespace {

// What the hot path copies of an organization's license in force: it changes only through
// the columns that module 78's triggers watch.
struct LicenseTerms {
  std::string license_id;
  int64_t ai_cap = -1;  // effective max_ai_requests_per_month; -1 = unlimited
  uint64_t generation = 0;
};

constexpr size_t kMaxCachedOrganizations = 50'000;

std::unordered_map<std::string, LicenseTerms>& terms_cache() {
  static std::unordered_map<std::string, LicenseTerms> cache;
  return cache;
}

int64_t to_int64(const Text& text) { return text ? std::stoll(*text) : 0; }

// The terms of the organization's license in force, from the copy or read now (and kept).
std::optional<LicenseTerms> license_terms(SpiSession& spi, const std::string& organization_id) {
  const std::optional<uint64_t> generation = cache_validity::current();
  if (!generation) return std::nullopt;
  auto& cache = terms_cache();
  if (auto found = cache.find(organization_id); found != cache.end()) {
    if (found->second.generation == *generation) return found->second;
    cache.erase(found);
  }
  // Not read-only: the statement takes a snapshot of its own, newer than the generation
  // read above, so a change committed in between makes this copy stale at once rather than
  // never. The cap is limit_value(), the one rule of module 25.
  QueryResult rows = spi.run(
      "SELECT l.id, coalesce(nullif(celaest.limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,"
      "         CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,"
      "         l.billing_cycle = 'usage_based'), -1), -1)"
      "  FROM celaest.licenses AS l JOIN celaest.subscription_plans AS p ON p.id = l.plan_id"
      " WHERE l.organization_id = $1::uuid AND l.status IN ('trial', 'active', 'suspended')",
      {organization_id});
  if (rows.rows.size() != 1) return std::nullopt;  // none in force (or, impossibly, two)
  LicenseTerms terms{*rows.at(0, 0), to_int64(rows.at(0, 1)), *generation};
  if (cache.size() >= kMaxCachedOrganizations) cache.clear();
  cache.emplace(organization_id, terms);
  return terms;
}

}  // namespace

bool is_ai_request_metric(const std::string& metric) {
  return metric == "ai_requests" || metric == "max_ai_requests_per_month";
}

std::optional<AiQuota> read_ai_quota(SpiSession& spi, const std::string& organization_id) {
  std::optional<LicenseTerms> terms = license_terms(spi, organization_id);
  if (!terms) return std::nullopt;
  LicenseCounters row;
  switch (read_license_counters(terms->license_id, organization_id, &row)) {
    case DirectRead::NotFound:
      return std::nullopt;
    case DirectRead::Found: {
      if (row.status == core::LicenseStatus::Expired || row.status == core::LicenseStatus::Cancelled)
        return std::nullopt;  // no longer in force: the general path answers from the latest license
      // The period's usage is 0 once its period has ended (refresh_licenses rolls it).
      return AiQuota{terms->license_id, std::string(core::license_state_code(row.status, row.expired, row.trial_ended)),
                     terms->ai_cap, row.period_ended ? 0 : row.ai_requests_used};
    }
    case DirectRead::NotAllowed:
      break;
  }
  // The same read as a query, under the caller's row-level security: license_code() of
  // module 25 for a license in force.
  QueryResult rows = spi.run(
      "SELECT CASE WHEN l.expires_at <= now() THEN CASE WHEN l.status = 'trial' THEN 'TRIAL_EXPIRED' ELSE 'EXPIRED' END"
      "            WHEN l.status = 'trial' AND l.trial_ends_at <= now() THEN 'TRIAL_EXPIRED'"
      "            WHEN l.status = 'suspended' THEN 'SUSPENDED' ELSE 'VALID' END,"
      "       CASE WHEN l.current_period_end <= now() THEN 0 ELSE l.ai_requests_used END"
      "  FROM celaest.licenses AS l"
      " WHERE l.id = $1::uuid AND l.organization_id = $2::uuid AND l.status IN ('trial', 'active', 'suspended')",
      {terms->license_id, organization_id}, true);
  if (rows.rows.size() != 1) return std::nullopt;
  return AiQuota{terms->license_id, *rows.at(0, 0), terms->ai_cap, to_int64(rows.at(0, 1))};
}

std::optional<AiCharge> charge_ai_requests(SpiSession& spi, const std::string& organization_id, int64_t amount) {
  std::optional<LicenseTerms> terms = license_terms(spi, organization_id);
  if (!terms) return std::nullopt;
  const int64_t cap = terms->ai_cap < 0 ? std::numeric_limits<int64_t>::max() : terms->ai_cap;
  if (amount < 0 || amount > cap) return std::nullopt;
  // READ COMMITTED re-evaluates this WHERE clause on the latest row version when it waited
  // for a concurrent charge: a grant always leaves ai_requests_used <= cap.
  QueryResult rows = spi.run(
      "UPDATE celaest.licenses AS l SET ai_requests_used = l.ai_requests_used + $2::bigint"
      " WHERE l.id = $1::uuid AND l.status IN ('trial', 'active')"
      "   AND (l.expires_at IS NULL OR l.expires_at > now())"
      "   AND (l.status <> 'trial' OR l.trial_ends_at IS NULL OR l.trial_ends_at > now())"
      "   AND (l.current_period_end IS NULL OR l.current_period_end > now())"
      "   AND l.ai_requests_used <= $3::bigint - $2::bigint"
      " RETURNING l.ai_requests_used, l.current_period_start, l.current_period_end",
      {terms->license_id, std::to_string(amount), std::to_string(cap)});
  if (rows.rows.size() != 1) return std::nullopt;
  const int64_t used = to_int64(rows.at(0, 0));
  return AiCharge{terms->license_id, terms->ai_cap < 0 ? -1 : terms->ai_cap - used, rows.at(0, 1), rows.at(0, 2)};
}

}  // namespace celaest::pg
