#include "pg/boundary/shared_state.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace celaest::pg::shared {

namespace {

constexpr int kKeySlots = 1024;  // distinct API keys tracked at once (open addressing)
constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

struct WorkerSlot {
  int pid;
  char database[NAMEDATALEN];
  char state[32];
  TimestampTz last_run;
  char last_error[256];
  int64 runs;
  Latch* latch;
};

struct KeyWindow {
  char key_id[37];  // canonical uuid text; empty = free slot
  int64 minute;     // window index (now_ms / 60000)
  int64 minute_requests;
  int64 minute_tokens;
  int64 day;
  int64 day_requests;
  int64 cooldown_until_ms;
};

struct InflightSlot {
  char license_id[37];  // empty = free
  int64 count;
};

constexpr int kInflightSlots = 1024;  // licenses with AI calls in flight at once

struct TermsSlot {
  Oid database;              // organizations of different databases never share a slot
  char organization_id[37];  // empty = free
  char license_id[37];
  unsigned char license_uuid[16];
  int64 ai_cap;
  bool trial;
  uint64 generation;  // a slot of another generation is stale: free to take
  int64 filled_at_ms;
};

constexpr int kTermsSlots = 8192;  // organizations whose license terms are kept
constexpr int kTermsProbes = 32;   // a full neighbourhood just means "not kept"

struct State {
  LWLock* lock;
  pg_atomic_uint64 cache_generation[kCacheDomains];  // see cache_generation() in the header
  WorkerSlot workers[kWorkerKinds];
  KeyWindow windows[kKeySlots];
  InflightSlot inflight[kInflightSlots];
  TermsSlot terms[kTermsSlots];
};

State* state = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

// Without shared memory (not preloaded) the windows still hold within this backend.
std::unordered_map<std::string, KeyWindow>& local_windows() {
  static std::unordered_map<std::string, KeyWindow> windows;
  return windows;
}

void on_shmem_request() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(MAXALIGN(sizeof(State)));
  RequestNamedLWLockTranche("celaest", 1);
}

void on_shmem_startup() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  state = static_cast<State*>(ShmemInitStruct("celaest", sizeof(State), &found));
  if (!found) {
    std::memset(state, 0, sizeof(State));
    state->lock = &(GetNamedLWLockTranche("celaest"))->lock;
    for (auto& generation : state->cache_generation) pg_atomic_init_u64(&generation, 1);
  }
  LWLockRelease(AddinShmemInitLock);
}

void copy_text(char* destination, size_t capacity, const char* source) {
  std::strncpy(destination, source ? source : "", capacity - 1);
  destination[capacity - 1] = '\0';
}

// Holds the LWLock; releasing is plain (no ERROR path) so a destructor is safe here.
class LockGuard {
 public:
  explicit LockGuard(LWLockMode mode) { pg_guarded([&] { LWLockAcquire(state->lock, mode); }); }
  ~LockGuard() { LWLockRelease(state->lock); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
};

KeyWindow* find_window(const std::string& key_id, bool create) {
  if (!state) {
    auto& windows = local_windows();
    auto found = windows.find(key_id);
    if (found != windows.end()) return &found->second;
    if (!create) return nullptr;
    KeyWindow fresh{};
    copy_text(fresh.key_id, sizeof fresh.key_id, key_id.c_str());
    return &windows.emplace(key_id, fresh).first->second;
  }
  size_t hash = std::hash<std::string>{}(key_id);
  for (int probe = 0; probe < kKeySlots; ++probe) {
    KeyWindow* window = &state->windows[(hash + probe) % kKeySlots];
    if (window->key_id[0] == '\0') {
      if (!create) return nullptr;
      std::memset(window, 0, sizeof *window);
      copy_text(window->key_id, sizeof window->key_id, key_id.c_str());
      return window;
    }
    if (key_id == window->key_id) return window;
  }
  return nullptr;  // table full: the key goes unthrottled rather than unusable
}

void roll(KeyWindow* window, int64_t now_ms) {
  if (window->minute != now_ms / kMinuteMs) {
    window->minute = now_ms / kMinuteMs;
    window->minute_requests = 0;
    window->minute_tokens = 0;
  }
  if (window->day != now_ms / kDayMs) {
    window->day = now_ms / kDayMs;
    window->day_requests = 0;
  }
}

Admission admit_locked(const std::string& key_id, const KeyLimits& limits, int64_t now_ms) {
  KeyWindow* window = find_window(key_id, true);
  if (!window) return Admission::Admitted;
  if (window->cooldown_until_ms > now_ms) return Admission::CoolingDown;
  roll(window, now_ms);
  if (limits.rpm && window->minute_requests >= *limits.rpm) return Admission::NoRoom;
  if (limits.tpm && window->minute_tokens >= *limits.tpm) return Admission::NoRoom;
  if (limits.rpd && window->day_requests >= *limits.rpd) return Admission::NoRoom;
  ++window->minute_requests;
  ++window->day_requests;
  return Admission::Admitted;
}

InflightSlot* find_inflight(const std::string& license_id, bool create) {
  static InflightSlot local[kInflightSlots];  // not preloaded: this backend's own calls only
  InflightSlot* table = state ? state->inflight : local;
  size_t hash = std::hash<std::string>{}(license_id);
  InflightSlot* free_slot = nullptr;
  for (int probe = 0; probe < kInflightSlots; ++probe) {
    InflightSlot* slot = &table[(hash + probe) % kInflightSlots];
    if (slot->license_id[0] == '\0' || slot->count == 0) {
      if (slot->license_id[0] != '\0' && license_id == slot->license_id) return slot;
      if (!free_slot) free_slot = slot;
      if (slot->license_id[0] == '\0') break;  // end of the probe chain
      continue;
    }
    if (license_id == slot->license_id) return slot;
  }
  if (!create || !free_slot) return nullptr;
  copy_text(free_slot->license_id, sizeof free_slot->license_id, license_id.c_str());
  free_slot->count = 0;
  return free_slot;
}

}  // namespace

bool admit_inflight(const std::string& license_id, int64_t remaining, int64_t* inflight) {
  auto admit = [&] {
    InflightSlot* slot = find_inflight(license_id, true);
    *inflight = slot ? slot->count : 0;
    if (remaining >= 0 && *inflight + 1 > remaining) return false;
    if (slot) ++slot->count;
    return true;
  };
  if (!state) return admit();
  LockGuard lock(LW_EXCLUSIVE);
  return admit();
}

void release_inflight(const std::string& license_id) {
  auto release = [&] {
    InflightSlot* slot = find_inflight(license_id, false);
    if (slot && slot->count > 0) --slot->count;
  };
  if (!state) return release();
  LockGuard lock(LW_EXCLUSIVE);
  release();
}

const char* worker_name(WorkerKind kind) {
  return kind == WorkerKind::Maintenance ? "celaest maintenance" : "celaest batch runner";
}

void request() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = on_shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = on_shmem_startup;
}

bool available() { return state != nullptr; }

WorkerStatus worker_status(WorkerKind kind) {
  WorkerStatus status;
  status.worker = worker_name(kind);
  if (!state) {
    status.state = "not preloaded";
    return status;
  }
  LockGuard lock(LW_SHARED);
  const WorkerSlot& slot = state->workers[static_cast<int>(kind)];
  status.pid = slot.pid;
  status.database = slot.database;
  status.state = slot.state[0] ? slot.state : "not started";
  status.last_run = slot.last_run;
  status.last_error = slot.last_error;
  status.runs = slot.runs;
  return status;
}

void worker_started(WorkerKind kind, const char* database) {
  if (!state) return;
  LockGuard lock(LW_EXCLUSIVE);
  WorkerSlot& slot = state->workers[static_cast<int>(kind)];
  slot.pid = MyProcPid;
  copy_text(slot.database, sizeof slot.database, database);
  copy_text(slot.state, sizeof slot.state, "starting");
  slot.latch = MyLatch;
}

void worker_state(WorkerKind kind, const char* new_state) {
  if (!state) return;
  LockGuard lock(LW_EXCLUSIVE);
  copy_text(state->workers[static_cast<int>(kind)].state, sizeof state->workers[0].state, new_state);
}

void worker_ran(WorkerKind kind, const char* error_or_null) {
  if (!state) return;
  LockGuard lock(LW_EXCLUSIVE);
  WorkerSlot& slot = state->workers[static_cast<int>(kind)];
  slot.last_run = GetCurrentTimestamp();
  slot.runs++;
  copy_text(slot.last_error, sizeof slot.last_error, error_or_null ? error_or_null : "");
}

void worker_stopped(WorkerKind kind) {
  if (!state) return;
  LockGuard lock(LW_EXCLUSIVE);
  WorkerSlot& slot = state->workers[static_cast<int>(kind)];
  slot.pid = 0;
  slot.latch = nullptr;
  copy_text(slot.state, sizeof slot.state, "stopped");
}

void wake_worker(WorkerKind kind) {
  if (!state) return;
  Latch* latch = nullptr;
  {
    LockGuard lock(LW_SHARED);
    latch = state->workers[static_cast<int>(kind)].latch;
  }
  if (latch) SetLatch(latch);
}

Admission admit_request(const std::string& key_id, const KeyLimits& limits, int64_t now_ms) {
  if (!state) return admit_locked(key_id, limits, now_ms);
  LockGuard lock(LW_EXCLUSIVE);
  return admit_locked(key_id, limits, now_ms);
}

void record_tokens(const std::string& key_id, int64_t tokens, int64_t now_ms) {
  auto add = [&] {
    KeyWindow* window = find_window(key_id, true);
    if (!window) return;
    roll(window, now_ms);
    window->minute_tokens += tokens;
  };
  if (!state) return add();
  LockGuard lock(LW_EXCLUSIVE);
  add();
}

void cool_down(const std::string& key_id, int64_t until_ms) {
  auto apply = [&] {
    KeyWindow* window = find_window(key_id, true);
    if (window && window->cooldown_until_ms < until_ms) window->cooldown_until_ms = until_ms;
  };
  if (!state) return apply();
  LockGuard lock(LW_EXCLUSIVE);
  apply();
}

std::vector<std::pair<std::string, int64_t>> cooling_keys(int64_t now_ms) {
  std::vector<std::pair<std::string, int64_t>> cooling;
  if (!state) {
    for (const auto& [key_id, window] : local_windows())
      if (window.cooldown_until_ms > now_ms) cooling.emplace_back(key_id, window.cooldown_until_ms);
    return cooling;
  }
  // Copied into fixed arrays under the lock (no allocation while it is held), then returned.
  static KeyWindow copy[kKeySlots];
  int found = 0;
  {
    LockGuard lock(LW_SHARED);
    for (const KeyWindow& window : state->windows)
      if (window.key_id[0] != '\0' && window.cooldown_until_ms > now_ms) copy[found++] = window;
  }
  cooling.reserve(found);
  for (int i = 0; i < found; ++i) cooling.emplace_back(copy[i].key_id, copy[i].cooldown_until_ms);
  return cooling;
}

std::optional<uint64_t> cache_generation(int domain) {
  if (!state || domain < 0 || domain >= kCacheDomains) return std::nullopt;
  return pg_atomic_read_u64(&state->cache_generation[domain]);
}

void bump_cache_generation(int domain) {
  if (state && domain >= 0 && domain < kCacheDomains) pg_atomic_fetch_add_u64(&state->cache_generation[domain], 1);
}

std::optional<LicenseTermsCopy> find_license_terms(const std::string& organization_id, uint64_t generation,
                                                   int64_t filled_after_ms) {
  if (!state) return std::nullopt;
  const size_t hash = std::hash<std::string>{}(organization_id) ^ MyDatabaseId;
  LockGuard lock(LW_SHARED);
  for (int probe = 0; probe < kTermsProbes; ++probe) {
    const TermsSlot& slot = state->terms[(hash + probe) % kTermsSlots];
    if (slot.organization_id[0] == '\0') break;  // end of the probe chain
    if (slot.database != MyDatabaseId || organization_id != slot.organization_id) continue;
    if (slot.generation != generation || slot.filled_at_ms <= filled_after_ms) return std::nullopt;
    LicenseTermsCopy terms{slot.license_id, {}, slot.ai_cap, slot.trial};
    std::memcpy(terms.license_uuid, slot.license_uuid, sizeof terms.license_uuid);
    return terms;
  }
  return std::nullopt;
}

void keep_license_terms(const std::string& organization_id, const LicenseTermsCopy& terms, uint64_t generation,
                        int64_t filled_at_ms) {
  if (!state) return;
  const size_t hash = std::hash<std::string>{}(organization_id) ^ MyDatabaseId;
  LockGuard lock(LW_EXCLUSIVE);
  TermsSlot* target = nullptr;
  for (int probe = 0; probe < kTermsProbes; ++probe) {
    TermsSlot* slot = &state->terms[(hash + probe) % kTermsSlots];
    if (slot->organization_id[0] != '\0' && slot->database == MyDatabaseId &&
        organization_id == slot->organization_id) {
      target = slot;  // this organization's own slot, whatever its generation
      break;
    }
    const bool reusable = slot->organization_id[0] == '\0' || slot->generation != generation;
    if (reusable && !target) target = slot;
    if (slot->organization_id[0] == '\0') break;
  }
  if (!target) return;
  target->database = MyDatabaseId;
  target->filled_at_ms = filled_at_ms;
  copy_text(target->organization_id, sizeof target->organization_id, organization_id.c_str());
  copy_text(target->license_id, sizeof target->license_id, terms.license_id.c_str());
  std::memcpy(target->license_uuid, terms.license_uuid, sizeof target->license_uuid);
  target->ai_cap = terms.ai_cap;
  target->trial = terms.trial;
  target->generation = generation;
}

}  // namespace celaest::pg::shared
