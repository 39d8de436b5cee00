// What a call or a health check learned about an API key, written back to the pool:
// usage counters, consecutive failures and health (celaest.health_failure_threshold).
#pragma once

#include "pg/boundary/spi.hpp"
#include "pg/ledger/records.hpp"

#include <set>
#include <string>
#include <vector>

namespace celaest::pg {

// What a health check found about one key: healthy, or failed (definitive: 401/403/invalid key),
// or nothing about its health (`counts` false: a 429, the key authenticated fine), which neither
// counts toward celaest.health_failure_threshold nor resets the count (core::health_check_failure).
struct KeyVerdict {
  std::string key_id;
  bool healthy = false;
  bool definitive = false;
  bool counts = true;
};

class KeyHealth {
 public:
  // Rows: every write is an UPDATE of the key's row in the current transaction (health checks,
  // unserved databases). Ledger: an AI call's usage and health go to the ledger's shared memory
  // (ledger/counters.hpp) and the writer folds them into the row within a second, so that the
  // call never locks the key's row (README "The ledger").
  // AtCommit (an AI call in an unserved database): usage and health events go with the call's
  // record and are written when the caller's transaction commits (ledger/records.hpp), or by
  // whoever writes the record if it does not commit: the call locks no key row.
  enum class Writes { Rows, Ledger, AtCommit };
  explicit KeyHealth(SpiSession& spi, Writes writes = Writes::Rows) : spi_(spi), writes_(writes) {}

  void record_use(const std::string& key_id, long long tokens);  // increment_api_key_usage
  // The common outcome of a call: record_use(), plus succeeded() when the key had failures
  // (`had_failures`, from the routing copy, or failures recorded through this object). A
  // clean key's row gets the usage columns only, which no cache watches (src/sql/78_cache_validity.sql).
  void record_successful_use(const std::string& key_id, long long tokens, bool had_failures);
  void succeeded(const std::string& key_id);                      // resets the failure count
  // Counts a failure; `definitive` (401/403/invalid key/billing) marks the key unhealthy at once.
  void failed(const std::string& key_id, bool definitive);
  void checked(const std::string& key_id);                        // stamps last_health_check
  // A health check's verdicts on many keys, written in one statement: each key succeeded() or
  // failed() as above (or neither, for a verdict that does not count), and checked().
  void checked_all(const std::vector<KeyVerdict>& verdicts);
  // AtCommit: the health events recorded so far, in order, for the call's record.
  const std::vector<ledger::KeyHealthEvent>& deferred_events() const { return deferred_; }

 private:
  SpiSession& spi_;
  Writes writes_;
  std::set<std::string> failed_here_;  // keys whose failures this object recorded
  std::vector<ledger::KeyHealthEvent> deferred_;
};

}  // namespace celaest::pg
