#include "core/license_state.hpp"
#include "core/uuid_bytes.hpp"

#include "pg/licensing/license_quota.hpp"
#include "pg/licensing/license_row.hpp"
#include "pg/licensing/license_terms_cache.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"
#include "pg/boundary/wall_clock.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <cstring>
#include <limits>
#include <vector>

namespace celaest::pg {

namespace {

int64_t to_int64(const Text& text) { return text ? std::stoll(*text) : 0; }

// `_license_terms(org)` (src/sql/24_licensing_quota.sql) ('<license id> <cap> <status> <concurrent cap>', '' when
// none is in force), called
// through fmgr: owner's rights and a fixed search_path (its SECURITY DEFINER and SET clause),
// and no EXECUTE check, since nobody is granted it. What one caller reads here serves all.
std::string read_terms_text(const std::string& organization_id) {
  char* answer = pg_guarded([&]() -> char* {
    Oid argument_types[1] = {UUIDOID};
    List* name = list_make2(makeString(pstrdup("celaest")), makeString(pstrdup("_license_terms")));
    Oid terms_function = LookupFuncName(name, 1, argument_types, false);
    Datum organization_uuid = DirectFunctionCall1(uuid_in, CStringGetDatum(organization_id.c_str()));
    Datum terms = OidFunctionCall1(terms_function, organization_uuid);
    return text_to_cstring(DatumGetTextPP(terms));
  });
  std::string terms(answer);
  pfree(answer);
  return terms;
}

// The terms of the organization's license in force: which license, and its effective AI
// cap. They change only through the columns that src/sql/78_cache_validity.sql's triggers watch, so a copy in
// shared memory stamped with the cache generation stands for them.
std::optional<license_terms_cache::LicenseTermsCopy> license_terms(const std::string& organization_id) {
  const std::optional<uint64_t> generation = cache_validity::current(cache_validity::Domain::Licensing);
  if (!generation) return std::nullopt;
  const int64_t now = now_ms();
  if (auto kept = license_terms_cache::find(organization_id, *generation, now - cache_validity::kMaxCopyAgeMs))
    return kept;
  const std::string answer = read_terms_text(organization_id);
  // '<license id> <ai cap> <status> <concurrent cap>'; '' when no license is in force.
  std::vector<std::string> fields;
  for (size_t start = 0; start <= answer.size();) {
    const size_t space = std::min(answer.find(' ', start), answer.size());
    fields.push_back(answer.substr(start, space - start));
    start = space + 1;
  }
  if (fields.size() != 4) return std::nullopt;  // none in force
  license_terms_cache::LicenseTermsCopy terms{fields[0], {}, std::stoll(fields[1]), fields[2] == "trial",
                                              std::stoll(fields[3])};
  const std::optional<core::UuidBytes> license_uuid = core::parse_uuid(terms.license_id);
  if (!license_uuid) return std::nullopt;
  std::memcpy(terms.license_uuid, license_uuid->data(), license_uuid->size());
  license_terms_cache::keep(organization_id, terms, *generation, now);
  return terms;
}

}  // namespace

bool is_ai_request_metric(const std::string& metric) {
  return metric == "ai_requests" || metric == "max_ai_requests_per_month";
}

std::optional<AiQuota> read_ai_quota(SpiSession& spi, const std::string& organization_id, RowSnapshot snapshot) {
  std::optional<license_terms_cache::LicenseTermsCopy> terms = license_terms(organization_id);
  if (!terms) return std::nullopt;
  LicenseCounters row;
  switch (read_license_counters(terms->license_id, organization_id, snapshot, &row)) {
    case DirectRead::NotFound:
      return std::nullopt;
    case DirectRead::Found: {
      if (row.status == core::LicenseStatus::Expired || row.status == core::LicenseStatus::Cancelled)
        return std::nullopt;  // no longer in force: the general path answers from the latest license
      // The period's usage is 0 once its period has ended (refresh_licenses rolls it).
      return AiQuota{terms->license_id, std::string(core::license_state_code(row.status, row.expired, row.trial_ended)),
                     terms->ai_cap, row.period_ended ? 0 : row.ai_requests_used, terms->concurrent_cap};
    }
    case DirectRead::NotAllowed:
      break;
  }
  // The same read as a query, under the caller's row-level security.
  QueryResult rows = spi.run(
      "SELECT celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata),"
      "       CASE WHEN l.current_period_end <= now() THEN 0 ELSE l.ai_requests_used END"
      "  FROM celaest.licenses AS l"
      " WHERE l.id = $1::uuid AND l.organization_id = $2::uuid AND l.status IN ('trial', 'active', 'suspended')",
      {terms->license_id, organization_id}, snapshot == RowSnapshot::Statement);
  if (rows.rows.size() != 1) return std::nullopt;
  return AiQuota{terms->license_id, *rows.at(0, 0), terms->ai_cap, to_int64(rows.at(0, 1)), terms->concurrent_cap};
}

std::optional<std::string> license_in_force(const std::string& organization_id) {
  std::optional<license_terms_cache::LicenseTermsCopy> terms = license_terms(organization_id);
  if (!terms) return std::nullopt;
  return terms->license_id;
}

std::optional<AiCharge> charge_ai_requests(SpiSession& spi, const std::string& organization_id, int64_t amount,
                                           ChargePeriod with_period, int64_t pending) {
  std::optional<license_terms_cache::LicenseTermsCopy> terms = license_terms(organization_id);
  if (!terms) return std::nullopt;
  // What the ledger holds for the license counts as used: the room left is cap - pending.
  const int64_t cap = terms->ai_cap < 0 ? std::numeric_limits<int64_t>::max() : terms->ai_cap - pending;
  if (amount < 0 || amount > cap) return std::nullopt;
  // READ COMMITTED re-evaluates this WHERE clause on the latest row version when it waited
  // for a concurrent charge: a grant always leaves ai_requests_used <= cap. Two forms of one
  // statement: consume_quota() needs only the counter; the AI calls also log the period.
#define CELAEST_CHARGE_SQL(license, amount, cap, returning)                                       \
  "UPDATE celaest.licenses AS l SET ai_requests_used = l.ai_requests_used + " amount               \
  " WHERE l.id = " license " AND l.status IN ('trial', 'active')"                                    \
  "   AND (l.expires_at IS NULL OR l.expires_at > now())"                                          \
  "   AND (l.status <> 'trial' OR l.trial_ends_at IS NULL OR l.trial_ends_at > now())"            \
  "   AND (l.current_period_end IS NULL OR l.current_period_end > now())"                          \
  "   AND l.ai_requests_used <= " cap " - " amount " RETURNING " returning
// consume_quota's form, one per status the terms were read with: the status is a constant
// (a status changed since makes the row fail the check and the general path answer), and an
// active license's statement carries no trial condition.
// Its parameters: $1 license, $2 amount, $3 the most the counter may be before the charge
// (cap - amount), $4 now(): fewer expressions for the executor to set up per call.
#define CELAEST_CONSUME_SQL(status_condition)                                                     \
  "UPDATE celaest.licenses AS l SET ai_requests_used = l.ai_requests_used + $2"                   \
  " WHERE l.id = $1 AND " status_condition                                                         \
  "   AND (l.expires_at IS NULL OR l.expires_at > $4)"                                             \
  "   AND (l.current_period_end IS NULL OR l.current_period_end > $4)"                             \
  "   AND l.ai_requests_used <= $3 RETURNING l.ai_requests_used"
  if (with_period == ChargePeriod::NotNeeded) {
    // Binary parameters and result (no text round trip): this is consume_quota()'s whole
    // cost besides the UPDATE itself.
    pg_uuid_t license;
    std::memcpy(license.data, terms->license_uuid, UUID_LEN);
    std::optional<int64_t> used = spi.int8_scalar(
        terms->trial
            ? CELAEST_CONSUME_SQL("l.status = 'trial' AND (l.trial_ends_at IS NULL OR l.trial_ends_at > $4)")
            : CELAEST_CONSUME_SQL("l.status = 'active'"),
        {{UUIDOID, PointerGetDatum(&license)},
         {INT8OID, Int64GetDatum(amount)},
         {INT8OID, Int64GetDatum(cap - amount)},
         {TIMESTAMPTZOID, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())}});
    if (!used) return std::nullopt;
    return AiCharge{terms->license_id, terms->ai_cap < 0 ? -1 : cap - *used, *used, terms->ai_cap, std::nullopt,
                    std::nullopt};
  }
  QueryResult rows = spi.run(CELAEST_CHARGE_SQL("$1::uuid", "$2::bigint", "$3::bigint",
                                                "l.ai_requests_used, l.current_period_start, l.current_period_end"),
                             {terms->license_id, std::to_string(amount), std::to_string(cap)});
#undef CELAEST_CHARGE_SQL
#undef CELAEST_CONSUME_SQL
  if (rows.rows.size() != 1) return std::nullopt;
  const int64_t used = to_int64(rows.at(0, 0));
  return AiCharge{terms->license_id, terms->ai_cap < 0 ? -1 : cap - used, used, terms->ai_cap, rows.at(0, 1),
                  rows.at(0, 2)};
}

}  // namespace celaest::pg
