#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"
#include "pg/workers/launcher.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/lsyscache.h"
}

#include <algorithm>
#include <cstdio>

namespace celaest::pg::ledger {

namespace {

// Entries are keyed by "<database oid>/<uuid>": a database cloned from another keeps the same
// ids, and each database has its own writer and rows.
using EntryKey = core::FixedText<48>;

struct LicenseEntry {
  EntryKey key;
  uint32_t database;
  int64_t in_flight;          // admitted AI requests not yet charged or released
  int64_t unfolded;           // charged, not yet in licenses.ai_requests_used
  int64_t open_consumptions;  // consume_quota() grants of transactions still open
};

struct KeyEntry {
  EntryKey key;
  uint32_t database;
  int64_t requests, tokens, last_used_ms;  // not yet in ai_api_pool
  int32_t failures, definitive;            // since the last reset (reset zeroes them)
  uint64_t resets, resets_folded;          // successes that reset the failure count
};

struct PromptEntry {
  EntryKey key;
  uint32_t database;
  int64_t calls, time_ms, successes;  // not yet in prompts_master
};

using LicenseTable = core::FixedHashTable<LicenseEntry, core::TextKeyPolicy<LicenseEntry, &LicenseEntry::key>>;
using KeyTable = core::FixedHashTable<KeyEntry, core::TextKeyPolicy<KeyEntry, &KeyEntry::key>>;
using PromptTable = core::FixedHashTable<PromptEntry, core::TextKeyPolicy<PromptEntry, &PromptEntry::key>>;

// Licenses and keys with something pending at once, over every database. A full table never
// loses a charge: the call then charges the row in its own transaction, as an unserved
// database does (README "The ledger").
constexpr size_t kLicenseSlots = 4096;
constexpr size_t kKeySlots = 4096;
constexpr size_t kPromptSlots = 1024;

constexpr size_t kReadySlots = 64;

struct Counters {
  uint64_t fold_generation;  // bumped by every fold that committed
  // Databases whose writer rebuilt the counters since shared memory was (re)made: only then do
  // calls charge the ledger (a rebuild while calls charge it would count them twice).
  uint32_t ready[kReadySlots];
  LicenseTable::Cell licenses[kLicenseSlots];
  KeyTable::Cell keys[kKeySlots];
  PromptTable::Cell prompts[kPromptSlots];
};

shmem::Segment<Counters> segment("celaest ledger counters");

std::string entry_key(const std::string& id) { return std::to_string(MyDatabaseId) + "/" + id; }
std::string id_of(const EntryKey& key) {
  const std::string_view text = key.view();
  const size_t slash = text.find('/');
  return std::string(slash == std::string_view::npos ? text : text.substr(slash + 1));
}

bool license_empty(const LicenseEntry& entry) {
  return entry.in_flight <= 0 && entry.unfolded <= 0 && entry.open_consumptions <= 0;
}
bool key_empty(const KeyEntry& entry) {
  return entry.requests == 0 && entry.tokens == 0 && entry.failures == 0 && entry.definitive == 0 &&
         entry.resets == entry.resets_folded;
}

LicenseEntry* license_entry(Counters& counters, const std::string& key, bool create) {
  LicenseTable table(counters.licenses, kLicenseSlots);
  if (!create) return table.find(key);
  LicenseTable::Place place = table.insert(key);
  if (place.slot && place.outcome == LicenseTable::Outcome::Inserted) place.slot->database = MyDatabaseId;
  return place.slot;
}

KeyEntry* key_entry(Counters& counters, const std::string& key) {
  KeyTable table(counters.keys, kKeySlots);
  KeyTable::Place place = table.insert(key);
  if (place.slot && place.outcome == KeyTable::Outcome::Inserted) place.slot->database = MyDatabaseId;
  return place.slot;
}

void drop_if_empty(Counters& counters, const std::string& key) {
  LicenseTable table(counters.licenses, kLicenseSlots);
  const LicenseEntry* entry = table.find(key);
  if (entry && license_empty(*entry)) table.erase(key);
}

}  // namespace

// Warned once per backend when a table is full.
void warn_full(const char* what) {
  static bool warned = false;
  if (warned) return;
  warned = true;
  pg_guarded([what] {
    ereport(WARNING, (errmsg("celaest: the ledger's %s table is full; calls charge the rows directly", what)));
  });
}

bool served() {
  static int preloaded_and_listed = -1;
  if (preloaded_and_listed < 0)
    preloaded_and_listed = segment.shared() != nullptr && workers::serves_current_database() ? 1 : 0;
  // Once ready, ready for the backend's life: a shared memory reset ends every backend.
  static bool ready = false;
  if (preloaded_and_listed == 1 && !ready) ready = writer_ready(MyDatabaseId);
  return preloaded_and_listed == 1 && ready;
}

bool writer_ready(uint32_t database) {
  return segment.locked(LW_SHARED, [&](Counters& counters) {
    for (uint32_t ready : counters.ready)
      if (ready == database) return true;
    return false;
  });
}

void mark_writer_ready(uint32_t database) {
  segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    for (uint32_t& ready : counters.ready) {
      if (ready == database) return;
      if (ready == 0) {
        ready = database;
        return;
      }
    }
  });
}

bool has_deltas(uint32_t database) { return !take_snapshot(database).empty(); }

void reserve_shared_memory() { segment.reserve(); }

bool admit_request(const std::string& license_id, int64_t limit, const std::function<int64_t()>& read_used,
                   int64_t* seen) {
  const std::string key = entry_key(license_id);
  bool full = false;
  const bool admitted = segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseEntry* entry = license_entry(counters, key, true);
    if (!entry) {
      full = true;
      return false;
    }
    const int64_t pending = entry->in_flight + entry->unfolded + entry->open_consumptions;
    if (limit < 0) {
      *seen = pending;
      ++entry->in_flight;
      return true;
    }
    // The row under the same lock as the counters: a fold commits under it (header).
    *seen = read_used() + pending;
    if (*seen + 1 > limit) {
      drop_if_empty(counters, key);
      return false;
    }
    ++entry->in_flight;
    return true;
  });
  if (full) {
    warn_full("license");
    *seen = read_used();
    return limit < 0 || *seen + 1 <= limit;
  }
  return admitted;
}

bool charge_request(const std::string& license_id) {
  const std::string key = entry_key(license_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseEntry* entry = license_entry(counters, key, true);
    if (!entry) return false;
    ++entry->unfolded;
    if (entry->in_flight > 0) --entry->in_flight;
    return true;
  });
}

void release_request(const std::string& license_id) {
  const std::string key = entry_key(license_id);
  segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseEntry* entry = license_entry(counters, key, false);
    if (!entry) return;
    if (entry->in_flight > 0) --entry->in_flight;
    drop_if_empty(counters, key);
  });
}

int64_t pending_requests(const std::string& license_id, bool with_open_consumptions) {
  const std::string key = entry_key(license_id);
  return segment.locked(LW_SHARED, [&](Counters& counters) -> int64_t {
    LicenseEntry* entry = license_entry(counters, key, false);
    if (!entry) return 0;
    return entry->in_flight + entry->unfolded + (with_open_consumptions ? entry->open_consumptions : 0);
  });
}

int64_t used_with_pending(const std::string& license_id, const std::function<int64_t()>& read_used,
                          bool with_open_consumptions) {
  const std::string key = entry_key(license_id);
  return segment.locked(LW_SHARED, [&](Counters& counters) -> int64_t {
    LicenseEntry* entry = license_entry(counters, key, false);
    return read_used() + (entry ? entry->in_flight + entry->unfolded +
                                      (with_open_consumptions ? entry->open_consumptions : 0)
                                : 0);
  });
}

bool open_consumption(const std::string& license_id, int64_t amount) {
  const std::string key = entry_key(license_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseEntry* entry = license_entry(counters, key, true);
    if (!entry) return false;
    entry->open_consumptions += amount;
    return true;
  });
}

ConsumptionCheck publish_consumption(const std::string& license_id, int64_t amount, int64_t used_after,
                                     int64_t limit, int64_t* pending) {
  const std::string key = entry_key(license_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseTable table(counters.licenses, kLicenseSlots);
    LicenseEntry* entry = table.find(key);
    *pending = entry ? entry->in_flight + entry->unfolded : 0;
    if (limit >= 0 && used_after + *pending > limit) return ConsumptionCheck::NoRoom;
    if (!entry) entry = license_entry(counters, key, true);
    if (!entry) return ConsumptionCheck::TableFull;
    entry->open_consumptions += amount;
    return ConsumptionCheck::Published;
  });
}

void close_consumption(const std::string& license_id, int64_t amount) {
  const std::string key = entry_key(license_id);
  segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    LicenseEntry* entry = license_entry(counters, key, false);
    if (!entry) return;
    entry->open_consumptions = std::max<int64_t>(entry->open_consumptions - amount, 0);
    drop_if_empty(counters, key);
  });
}

bool prompt_used(const std::string& prompt_id, int64_t time_ms, bool ok) {
  const std::string key = entry_key(prompt_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    PromptTable table(counters.prompts, kPromptSlots);
    PromptTable::Place place = table.insert(key);
    if (!place.slot) return false;
    if (place.outcome == PromptTable::Outcome::Inserted) place.slot->database = MyDatabaseId;
    ++place.slot->calls;
    place.slot->time_ms += std::max<int64_t>(time_ms, 0);
    if (ok) ++place.slot->successes;
    return true;
  });
}

bool key_used(const std::string& key_id, int64_t tokens, int64_t at_ms) {
  const std::string key = entry_key(key_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    KeyEntry* entry = key_entry(counters, key);
    if (!entry) return false;
    ++entry->requests;
    entry->tokens += std::max<int64_t>(tokens, 0);
    entry->last_used_ms = std::max(entry->last_used_ms, at_ms);
    return true;
  });
}

bool key_failed(const std::string& key_id, bool definitive) {
  const std::string key = entry_key(key_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    KeyEntry* entry = key_entry(counters, key);
    if (!entry) return false;
    ++entry->failures;
    if (definitive) ++entry->definitive;
    return true;
  });
}

bool key_succeeded(const std::string& key_id) {
  const std::string key = entry_key(key_id);
  return segment.locked(LW_EXCLUSIVE, [&](Counters& counters) {
    KeyEntry* entry = key_entry(counters, key);
    if (!entry) return false;
    entry->failures = 0;
    entry->definitive = 0;
    ++entry->resets;
    return true;
  });
}

Fold take_snapshot(uint32_t database) {
  return segment.locked(LW_SHARED, [&](Counters& counters) {
    Fold fold;
    for (const auto& cell : counters.licenses) {
      if (!cell.occupied || cell.slot.database != database || cell.slot.unfolded <= 0) continue;
      fold.licenses.push_back({id_of(cell.slot.key), cell.slot.unfolded});
    }
    for (const auto& cell : counters.keys) {
      const KeyEntry& entry = cell.slot;
      if (!cell.occupied || entry.database != database || key_empty(entry)) continue;
      fold.keys.push_back({id_of(entry.key), entry.requests, entry.tokens, entry.last_used_ms, entry.failures,
                           entry.definitive, entry.resets, entry.resets != entry.resets_folded});
    }
    for (const auto& cell : counters.prompts) {
      if (!cell.occupied || cell.slot.database != database || cell.slot.calls <= 0) continue;
      fold.prompts.push_back({id_of(cell.slot.key), cell.slot.calls, cell.slot.time_ms, cell.slot.successes});
    }
    return fold;
  });
}

void lock_for_fold_commit() {
  LWLock* lock = segment.lock();
  if (lock) pg_guarded([lock] { LWLockAcquire(lock, LW_EXCLUSIVE); });
}

void subtract_folded_and_unlock(const Fold& folded) {
  Counters* counters = segment.shared();
  if (!counters) return;
  LicenseTable licenses(counters->licenses, kLicenseSlots);
  for (const LicenseFold& fold : folded.licenses) {
    const std::string key = entry_key(fold.license_id);
    LicenseEntry* entry = licenses.find(key);
    if (!entry) continue;
    entry->unfolded = std::max<int64_t>(entry->unfolded - fold.requests, 0);
    if (license_empty(*entry)) licenses.erase(key);
  }
  KeyTable keys(counters->keys, kKeySlots);
  for (const KeyFold& fold : folded.keys) {
    const std::string key = entry_key(fold.key_id);
    KeyEntry* entry = keys.find(key);
    if (!entry) continue;
    entry->requests -= fold.requests;
    entry->tokens -= fold.tokens;
    // Failures counted after a newer reset are not the folded ones: they stay.
    if (entry->resets == fold.resets) {
      entry->failures = std::max(entry->failures - fold.failures, 0);
      entry->definitive = std::max(entry->definitive - fold.definitive, 0);
    }
    entry->resets_folded = fold.resets;
    if (key_empty(*entry)) keys.erase(key);
  }
  PromptTable prompts(counters->prompts, kPromptSlots);
  for (const PromptFold& fold : folded.prompts) {
    const std::string key = entry_key(fold.prompt_id);
    PromptEntry* entry = prompts.find(key);
    if (!entry) continue;
    entry->calls -= fold.calls;
    entry->time_ms -= fold.time_ms;
    entry->successes -= fold.successes;
    if (entry->calls <= 0) prompts.erase(key);
  }
  ++counters->fold_generation;
  LWLockRelease(segment.lock());
}

void unlock_after_failed_fold() {
  LWLock* lock = segment.lock();
  if (lock && LWLockHeldByMe(lock)) LWLockRelease(lock);
}

DatabaseTotals totals(uint32_t database) {
  return segment.locked(LW_SHARED, [&](Counters& counters) {
    DatabaseTotals totals;
    totals.fold_generation = counters.fold_generation;
    for (const auto& cell : counters.licenses) {
      if (!cell.occupied || cell.slot.database != database) continue;
      ++totals.licenses;
      totals.requests_unfolded += cell.slot.unfolded;
      totals.requests_in_flight += cell.slot.in_flight;
      totals.consumptions_open += cell.slot.open_consumptions;
    }
    for (const auto& cell : counters.keys) {
      if (!cell.occupied || cell.slot.database != database) continue;
      ++totals.keys;
      totals.key_requests_unfolded += cell.slot.requests;
      totals.key_tokens_unfolded += cell.slot.tokens;
      totals.key_health_events += cell.slot.failures + (cell.slot.resets - cell.slot.resets_folded);
    }
    return totals;
  });
}

}  // namespace celaest::pg::ledger
