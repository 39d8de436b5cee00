#include "pg/ai/key_health.hpp"

#include "pg/boundary/settings.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/ledger/counters.hpp"

namespace celaest::pg {

void KeyHealth::record_use(const std::string& key_id, long long tokens) {
  if (writes_ == Writes::AtCommit) return;  // the record's key charges
  if (writes_ == Writes::Ledger) {
    if (ledger::key_used(key_id, tokens, now_ms())) return;
    ledger::warn_full("key");
  }
  // increment_api_key_usage()'s UPDATE, without the PL/pgSQL call around it: the arguments
  // are ours (an existing key, tokens >= 0), so its checks have nothing to catch.
  spi_.run(
      "UPDATE celaest.ai_api_pool SET usage_count = usage_count + 1, tokens_used = tokens_used + $2::bigint,"
      "  last_used_at = now() WHERE id = $1::uuid",
      {key_id, std::to_string(tokens < 0 ? 0 : tokens)});
}

void KeyHealth::record_successful_use(const std::string& key_id, long long tokens, bool had_failures) {
  if (writes_ == Writes::Ledger) {
    const bool resets = had_failures || failed_here_.count(key_id) > 0;
    failed_here_.erase(key_id);
    if (ledger::key_used(key_id, tokens, now_ms()) && (!resets || ledger::key_succeeded(key_id))) return;
    ledger::warn_full("key");
  }
  if (!had_failures && !failed_here_.count(key_id)) return record_use(key_id, tokens);
  failed_here_.erase(key_id);
  if (writes_ == Writes::AtCommit) return succeeded(key_id);
  // Every UPDATE of the pool evaluates all of its CHECK constraints and fires its triggers:
  // one statement, not two.
  spi_.run(
      "UPDATE celaest.ai_api_pool SET usage_count = usage_count + 1, tokens_used = tokens_used + $2::bigint,"
      "  last_used_at = now(), consecutive_failures = 0, is_healthy = true WHERE id = $1::uuid",
      {key_id, std::to_string(tokens < 0 ? 0 : tokens)});
}

void KeyHealth::succeeded(const std::string& key_id) {
  if (writes_ == Writes::Ledger && ledger::key_succeeded(key_id)) return;
  if (writes_ == Writes::AtCommit) return deferred_.push_back({key_id, false, false});
  // Written only when something changes: a healthy key's row stays untouched on the hot path.
  spi_.run(
      "UPDATE celaest.ai_api_pool SET consecutive_failures = 0, is_healthy = true "
      "WHERE id = $1::uuid AND (consecutive_failures <> 0 OR NOT is_healthy)",
      {key_id});
}

void KeyHealth::failed(const std::string& key_id, bool definitive) {
  failed_here_.insert(key_id);
  if (writes_ == Writes::Ledger && ledger::key_failed(key_id, definitive)) return;
  if (writes_ == Writes::AtCommit) return deferred_.push_back({key_id, true, definitive});
  spi_.run(
      "UPDATE celaest.ai_api_pool SET consecutive_failures = consecutive_failures + 1, "
      "  is_healthy = is_healthy AND NOT $2::boolean AND consecutive_failures + 1 < $3::int "
      "WHERE id = $1::uuid",
      {key_id, std::string(definitive ? "true" : "false"), std::to_string(settings::health_failure_threshold)});
}

void KeyHealth::checked(const std::string& key_id) {
  spi_.run("UPDATE celaest.ai_api_pool SET last_health_check = now() WHERE id = $1::uuid", {key_id});
}

void KeyHealth::checked_all(const std::vector<KeyVerdict>& verdicts) {
  if (verdicts.empty()) return;
  // The verdicts travel as four array parameters (uuids and booleans only: never a secret).
  std::string ids = "{", healthy = "{", definitive = "{", counts = "{";
  for (size_t i = 0; i < verdicts.size(); ++i) {
    const char* separator = i == 0 ? "" : ",";
    ids += separator + verdicts[i].key_id;
    healthy += separator + std::string(verdicts[i].healthy ? "t" : "f");
    definitive += separator + std::string(verdicts[i].definitive ? "t" : "f");
    counts += separator + std::string(verdicts[i].counts ? "t" : "f");
  }
  ids += "}", healthy += "}", definitive += "}", counts += "}";
  // The same rules as succeeded()/failed()/checked(), one row update per key; a verdict that
  // does not count (a 429) only stamps the check.
  spi_.run(
      "UPDATE celaest.ai_api_pool AS pool SET last_health_check = now(),"
      "  consecutive_failures = CASE WHEN verdict.healthy THEN 0"
      "                              WHEN NOT verdict.counts THEN pool.consecutive_failures"
      "                              ELSE pool.consecutive_failures + 1 END,"
      "  is_healthy = verdict.healthy OR (pool.is_healthy AND (NOT verdict.counts OR (NOT verdict.definitive"
      "                                   AND pool.consecutive_failures + 1 < $5::int)))"
      " FROM unnest($1::uuid[], $2::boolean[], $3::boolean[], $4::boolean[])"
      "      AS verdict(key_id, healthy, definitive, counts)"
      " WHERE pool.id = verdict.key_id",
      {ids, healthy, definitive, counts, std::to_string(settings::health_failure_threshold)});
}

}  // namespace celaest::pg
