// The ledger's counters in shared memory (README "The ledger"): what AI calls owe the
// licenses and keys rows, kept outside every caller's transaction so that no call ever locks a
// shared row, and folded into the rows by the database's ledger writer (writer.cpp) at least
// once a second.
//
// Per license (of one database): AI requests admitted and still in flight, requests charged
// but not yet folded into licenses.ai_requests_used, and requests consume_quota() granted in
// transactions that have not ended. Per key: requests, tokens and the last use not yet folded
// into ai_api_pool, and the health events (failures, resets) not yet written. Per prompt:
// run_prompt calls, their time and successes not yet in prompts_master's running statistics.
//
// Exactness of admission: the writer commits a fold while holding this module's lock, and
// subtracts what it folded before releasing it; an admission reads the row (a fresh snapshot)
// and the counters under the same lock. So a reader sees either the row before the fold and
// the counters that still hold it, or the row after the fold and the counters without it —
// never both, never neither.
//
// Served databases only (served()): without a writer nothing would ever fold, and the calls
// charge the rows in the caller's transaction as before.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace celaest::pg::ledger {

// Whether a ledger writer serves the current database: the library is preloaded,
// celaest.databases does not exclude it, and its writer has rebuilt the counters since shared
// memory was made (writer_ready). Until then, calls charge the rows as unserved ones do.
bool served();
bool writer_ready(uint32_t database);
void mark_writer_ready(uint32_t database);
// Whether the database has charges or health events to fold.
bool has_deltas(uint32_t database);

// From _PG_init, when preloaded.
void reserve_shared_memory();

// --- licenses
// Admits one AI request of `license_id` when row + unfolded + in flight + open consumptions
// + 1 <= limit (limit < 0: unlimited); `read_used` reads the row's counter with a fresh
// snapshot and is called under the lock. `*seen` is the total seen before admission.
bool admit_request(const std::string& license_id, int64_t limit, const std::function<int64_t()>& read_used,
                   int64_t* seen);
// The admitted request reached a provider: counted as charged (unfolded) instead of in flight.
// false: the table is full; the caller charges the row itself.
bool charge_request(const std::string& license_id);
// The admitted request is not charged (nothing reached a provider, or the call failed first).
void release_request(const std::string& license_id);
// What the licenses row does not hold yet: unfolded + in flight (+ open consumptions when
// `with_open_consumptions`). 0 when the license has no entry.
int64_t pending_requests(const std::string& license_id, bool with_open_consumptions);
// The same, with the row read under the lock (check_limit's exact figure). With
// `with_open_consumptions`, the consume_quota() grants and submit_batch reservations of
// transactions still open count too (the caller takes out its own, which its row already holds).
int64_t used_with_pending(const std::string& license_id, const std::function<int64_t()>& read_used,
                          bool with_open_consumptions = false);

// consume_quota()'s general path (_take_quota): the amount is published as an open consumption
// before its UPDATE, whose condition reads the ledger's figure itself (_ai_requests_pending)
// when it holds the row; close_consumption() takes it back (refused, or at the transaction's
// end). false: the table was full; the consumption is not counted.
bool open_consumption(const std::string& license_id, int64_t amount);
void close_consumption(const std::string& license_id, int64_t amount);

// consume_quota()'s fast path, after its UPDATE raised the row to `used_after` while holding
// the row (no fold and no other consumption can change it until the transaction ends): the
// grant stands if `used_after` plus what the ledger holds now (in flight + unfolded) is within
// `limit`, and is then published as an open consumption — checked and published under the
// ledger's lock, so that every AI admission either counted the grant or is counted here.
// `*pending` is that figure. A figure read before the UPDATE would not do: AI calls admitted
// between the two reads counted this consumption as open while another consumption, which
// does not count open ones, took the room first (README "The ledger").
enum class ConsumptionCheck { Published, NoRoom, TableFull };
ConsumptionCheck publish_consumption(const std::string& license_id, int64_t amount, int64_t used_after,
                                     int64_t limit, int64_t* pending);

// --- prompts: a run_prompt call's running statistics (prompts_master usage_count, average time,
// success rate), folded like the keys' usage. false: the table is full; the caller writes the row.
bool prompt_used(const std::string& prompt_id, int64_t time_ms, bool ok);

// --- keys (false: the table is full; the caller writes the row itself)
bool key_used(const std::string& key_id, int64_t tokens, int64_t at_ms);
bool key_failed(const std::string& key_id, bool definitive);
bool key_succeeded(const std::string& key_id);
// A WARNING once per backend: `what` ("license", "key") table is full.
void warn_full(const char* what);

// --- the writer
// The current database's deltas, as one fold would write them.
struct LicenseFold {
  std::string license_id;
  int64_t requests = 0;
};
struct KeyFold {
  std::string key_id;
  int64_t requests = 0, tokens = 0, last_used_ms = 0;
  int32_t failures = 0, definitive = 0;
  uint64_t resets = 0;       // resets counted so far (the entry's counter)
  bool reset = false;        // a reset since the last fold
};
struct PromptFold {
  std::string prompt_id;
  int64_t calls = 0, time_ms = 0, successes = 0;
};
struct Fold {
  std::vector<LicenseFold> licenses;
  std::vector<KeyFold> keys;
  std::vector<PromptFold> prompts;
  bool empty() const { return licenses.empty() && keys.empty() && prompts.empty(); }
};
Fold take_snapshot(uint32_t database);
// Under the lock, after the fold's transaction committed: subtracts what was folded (only the
// rows the fold could update), bumps the fold generation, drops entries left empty.
void lock_for_fold_commit();
void subtract_folded_and_unlock(const Fold& folded);
void unlock_after_failed_fold();
// Pending figures of the current database, for _ledger_state() and the tests.
struct DatabaseTotals {
  int64_t licenses = 0, requests_unfolded = 0, requests_in_flight = 0, consumptions_open = 0;
  int64_t keys = 0, key_requests_unfolded = 0, key_tokens_unfolded = 0, key_health_events = 0;
  uint64_t fold_generation = 0;
};
DatabaseTotals totals(uint32_t database);

}  // namespace celaest::pg::ledger
