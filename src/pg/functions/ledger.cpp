// The ledger writer's steps (src/sql/47_ledger.sql), each run by the writer in a transaction of
// its own (workers.cpp), and the ledger's figures for SQL (README "The ledger"):
//   _ledger_drain()   writes the records handed on by transactions that did not commit;
//   _ledger_fold()    folds the counters' deltas into licenses and ai_api_pool;
//   _ledger_state()   what is pending in this database (tests, diagnostics).
#include <nlohmann/json.hpp>

#include "pg/ai/task_record.hpp"
#include "pg/ledger/counters.hpp"
#include "pg/ledger/records.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/subtransaction.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
}

namespace celaest::pg {

namespace {

std::string array_text(const std::vector<std::string>& values) {
  std::string text = "{";
  for (size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + values[i];
  return text + "}";
}

// The fold this transaction wrote, subtracted from the counters once it committed: the lock is
// taken at PRE_COMMIT and released after the subtraction at COMMIT, so that no admission sees
// the rows after the fold with the counters before it (ledger/counters.hpp).
ledger::Fold& awaiting_commit() {
  static ledger::Fold fold;
  return fold;
}
bool holding_lock = false;

void fold_at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("ledger fold", on_failure_at(event), [&] {
    ledger::Fold& fold = awaiting_commit();
    switch (event) {
      case XACT_EVENT_PRE_COMMIT:
        if (fold.empty()) return;
        ledger::lock_for_fold_commit();
        holding_lock = true;
        return;
      case XACT_EVENT_COMMIT:
        if (holding_lock) ledger::subtract_folded_and_unlock(fold);
        holding_lock = false;
        fold = ledger::Fold();
        return;
      case XACT_EVENT_ABORT:
        // AbortTransaction released every LWLock before the callbacks.
        holding_lock = false;
        fold = ledger::Fold();
        return;
      default:
        return;
    }
  });
}

void register_fold_callback() {
  static bool registered = false;
  if (registered) return;
  pg_guarded([] { RegisterXactCallback(fold_at_transaction_end, nullptr); });
  registered = true;
}

std::set<std::string> ids_of(const QueryResult& rows) {
  std::set<std::string> ids;
  for (const Row& row : rows.rows)
    if (row.at(0)) ids.insert(*row.at(0));
  return ids;
}

}  // namespace

}  // namespace celaest::pg

using namespace celaest::pg;

// _ledger_fold() RETURNS bigint: rows folded. A row locked by another transaction (a
// consume_quota() of a transaction left open, an administrator's UPDATE) is skipped and folded
// by a later pass: the writer never waits for a caller. NO KEY UPDATE: the KEY SHARE locks
// that open transactions' task rows hold on their license and key (foreign keys) do not stop it.
CELAEST_FUNCTION(celaest_ledger_fold) {
  ledger::Fold fold = ledger::take_snapshot(MyDatabaseId);
  if (fold.empty()) return Int64GetDatum(0);
  register_fold_callback();
  SpiSession spi;
  // A crash may lose a fold that committed without a flush: the writer rebuilds the counters
  // from processed_tasks at its start (_ledger_rebuild), so the fold need not wait for the disk.
  spi.run("SELECT set_config('synchronous_commit', 'off', true)");
  ledger::Fold folded;
  if (!fold.licenses.empty()) {
    std::vector<std::string> ids, amounts;
    for (const auto& license : fold.licenses) {
      ids.push_back(license.license_id);
      amounts.push_back(std::to_string(license.requests));
    }
    const std::set<std::string> updated = ids_of(spi.run(
        "WITH d AS (SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS d(id, n)),"
        " locked AS (SELECT l.id FROM celaest.licenses AS l WHERE l.id IN (SELECT id FROM d)"
        "            FOR NO KEY UPDATE SKIP LOCKED),"
        " folded AS (UPDATE celaest.licenses AS l SET ai_requests_used = l.ai_requests_used + d.n"
        "            FROM d WHERE l.id = d.id AND l.id IN (SELECT id FROM locked)"
        "            RETURNING l.id, d.n, l.current_period_start),"
        " noted AS (INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)"
        "           SELECT id, current_period_start, n, 0 FROM folded"
        "           ON CONFLICT (subject) DO UPDATE SET"
        "             requests = CASE WHEN f.period_start IS NOT DISTINCT FROM EXCLUDED.period_start"
        "                             THEN f.requests ELSE 0 END + EXCLUDED.requests,"
        "             period_start = EXCLUDED.period_start)"
        " SELECT id::text FROM folded"
        // A license deleted since: nothing to fold into, its charges go.
        " UNION ALL SELECT d.id::text FROM d WHERE NOT EXISTS (SELECT FROM celaest.licenses AS l WHERE l.id = d.id)",
        {array_text(ids), array_text(amounts)}));
    for (const auto& license : fold.licenses)
      if (updated.count(license.license_id)) folded.licenses.push_back(license);
  }
  if (!fold.keys.empty()) {
    std::vector<std::string> ids, requests, tokens, last_used, failures, definitive, reset;
    for (const auto& key : fold.keys) {
      ids.push_back(key.key_id);
      requests.push_back(std::to_string(key.requests));
      tokens.push_back(std::to_string(key.tokens));
      last_used.push_back(std::to_string(key.last_used_ms));
      failures.push_back(std::to_string(key.failures));
      definitive.push_back(std::to_string(key.definitive));
      reset.push_back(key.reset ? "true" : "false");
    }
    // Health as the calls' own UPDATEs wrote it: a reset (a success after failures) zeroes the
    // count and makes the key healthy, each failure counts, a definitive one or reaching
    // celaest.health_failure_threshold makes it unhealthy.
    const std::set<std::string> updated = ids_of(spi.run(
        "WITH d AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[],"
        "                                $6::int[], $7::boolean[]) AS d(id, n, tokens, last_ms, failures,"
        "                                                                   definitive, reset)),"
        " locked AS (SELECT k.id FROM celaest.ai_api_pool AS k WHERE k.id IN (SELECT id FROM d)"
        "            FOR NO KEY UPDATE SKIP LOCKED),"
        " folded AS (UPDATE celaest.ai_api_pool AS k SET"
        "              usage_count = k.usage_count + d.n, tokens_used = k.tokens_used + d.tokens,"
        "              last_used_at = CASE WHEN d.last_ms > 0"
        "                                  THEN greatest(k.last_used_at, to_timestamp(d.last_ms / 1000.0))"
        "                                  ELSE k.last_used_at END,"
        "              consecutive_failures = CASE WHEN d.reset THEN 0 ELSE k.consecutive_failures END + d.failures,"
        "              is_healthy = CASE WHEN d.failures = 0 AND NOT d.reset THEN k.is_healthy"
        "                                ELSE (d.reset OR k.is_healthy) AND d.definitive = 0"
        "                                     AND (CASE WHEN d.reset THEN 0 ELSE k.consecutive_failures END"
        "                                          + d.failures) < $8::int END"
        "            FROM d WHERE k.id = d.id AND k.id IN (SELECT id FROM locked)"
        "            RETURNING k.id, d.n, d.tokens),"
        " noted AS (INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)"
        "           SELECT id, NULL, n, tokens FROM folded WHERE n <> 0 OR tokens <> 0"
        "           ON CONFLICT (subject) DO UPDATE SET requests = f.requests + EXCLUDED.requests,"
        "                                               tokens = f.tokens + EXCLUDED.tokens)"
        " SELECT id::text FROM folded"
        " UNION ALL SELECT d.id::text FROM d WHERE NOT EXISTS (SELECT FROM celaest.ai_api_pool AS k WHERE k.id = d.id)",
        {array_text(ids), array_text(requests), array_text(tokens), array_text(last_used), array_text(failures),
         array_text(definitive), array_text(reset), std::to_string(settings::health_failure_threshold)}));
    for (const auto& key : fold.keys)
      if (updated.count(key.key_id)) folded.keys.push_back(key);
  }
  if (!fold.prompts.empty()) {
    std::vector<std::string> ids, calls, times, successes;
    for (const auto& prompt : fold.prompts) {
      ids.push_back(prompt.prompt_id);
      calls.push_back(std::to_string(prompt.calls));
      times.push_back(std::to_string(prompt.time_ms));
      successes.push_back(std::to_string(prompt.successes));
    }
    // The running values as the calls' own UPDATEs kept them, n calls at once.
    const std::set<std::string> updated = ids_of(spi.run(
        "WITH d AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(id, n, ms, ok)),"
        " locked AS (SELECT p.id FROM celaest.prompts_master AS p WHERE p.id IN (SELECT id FROM d)"
        "            FOR NO KEY UPDATE SKIP LOCKED),"
        " folded AS (UPDATE celaest.prompts_master AS p SET usage_count = p.usage_count + d.n,"
        "              avg_response_time_ms = ((coalesce(p.avg_response_time_ms, 0)::numeric * p.usage_count + d.ms)"
        "                                      / (p.usage_count + d.n))::int,"
        "              success_rate = round((coalesce(p.success_rate, 0) * p.usage_count + d.ok * 100)"
        "                                   / (p.usage_count + d.n), 2)"
        "            FROM d WHERE p.id = d.id AND p.id IN (SELECT id FROM locked) RETURNING p.id, d.n, d.ms, d.ok),"
        // What the rebuild after a crash compares with the tasks marked prompt_stats = 'shared'.
        " noted AS (INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens, time_ms, successes)"
        "           SELECT id, NULL, n, 0, ms, ok FROM folded"
        "           ON CONFLICT (subject) DO UPDATE SET requests = f.requests + EXCLUDED.requests,"
        "                                               time_ms = f.time_ms + EXCLUDED.time_ms,"
        "                                               successes = f.successes + EXCLUDED.successes)"
        " SELECT id::text FROM folded"
        " UNION ALL SELECT d.id::text FROM d WHERE NOT EXISTS (SELECT FROM celaest.prompts_master AS p WHERE p.id = d.id)",
        {array_text(ids), array_text(calls), array_text(times), array_text(successes)}));
    for (const auto& prompt : fold.prompts)
      if (updated.count(prompt.prompt_id)) folded.prompts.push_back(prompt);
  }
  const int64_t rows = static_cast<int64_t>(folded.licenses.size() + folded.keys.size() + folded.prompts.size());
  awaiting_commit() = std::move(folded);
  return Int64GetDatum(rows);
}

// _ledger_drain() RETURNS bigint: records written. One subtransaction each: a record that
// cannot be written (its organization deleted since) is set aside, the others go on.
CELAEST_FUNCTION(celaest_ledger_drain) {
  std::vector<ledger::Spooled> spooled = ledger::read_spool(MyDatabaseId, 1000);
  if (spooled.empty()) return Int64GetDatum(0);
  SpiSession spi;
  int64_t written = 0;
  for (const ledger::Spooled& entry : spooled) {
    try {
      in_subtransaction([&] { write_handed_on_record(spi, entry.record); });
      ledger::remove_at_commit(entry.path);
      ++written;
    } catch (const PgError& error) {
      if (error.ends_the_statement()) throw;
      ledger::set_aside(entry.path, error.message());
    } catch (const Error& error) {
      ledger::set_aside(entry.path, error.message());
    }
  }
  return Int64GetDatum(written);
}

// _ledger_state() RETURNS jsonb
CELAEST_FUNCTION(celaest_ledger_state) {
  const ledger::DatabaseTotals totals = ledger::totals(MyDatabaseId);
  nlohmann::json state = {{"served", ledger::served()},
                          {"licenses", totals.licenses},
                          {"requests_unfolded", totals.requests_unfolded},
                          {"requests_in_flight", totals.requests_in_flight},
                          {"consumptions_open", totals.consumptions_open},
                          {"keys", totals.keys},
                          {"key_requests_unfolded", totals.key_requests_unfolded},
                          {"key_tokens_unfolded", totals.key_tokens_unfolded},
                          {"key_health_events", totals.key_health_events},
                          {"records_spooled", ledger::spooled_count(MyDatabaseId)},
                          {"fold_generation", totals.fold_generation}};
  return jsonb_datum(state.dump());
}
