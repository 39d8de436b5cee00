#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include "pg/ai/key_rate_windows.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/shmem.hpp"
#include "pg/boundary/wall_clock.hpp"

#include <algorithm>
#include <string_view>

namespace celaest::pg::key_rate_windows {

namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

struct KeyWindow {
  core::FixedText<37> key_id;  // canonical uuid text
  int64_t minute;              // window index (now_ms / 60000)
  int64_t minute_requests;
  int64_t minute_tokens;
  int64_t day;
  int64_t day_requests;
  int64_t cooldown_until_ms;
  int64_t last_used_ms;  // the latest admission, token count or cool-down
};

using WindowTable = core::FixedHashTable<KeyWindow, core::TextKeyPolicy<KeyWindow, &KeyWindow::key_id>>;

// Keys with a window at once. A window idle for longer than its longest window (a day) holds
// nothing any more (both windows would roll) and its slot is taken by the next new key, so
// only keys used within the last 24 hours count against this.
constexpr size_t kKeySlots = 8192;

struct Windows {
  WindowTable::Cell cells[kKeySlots];
};

shmem::Segment<Windows> segment("celaest key rate windows");

bool stale(const KeyWindow& window, int64_t now_ms) {
  return now_ms - window.last_used_ms > kDayMs && window.cooldown_until_ms <= now_ms;
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

// Warned once per backend: a full table lets new keys go unthrottled (rather than unusable).
bool warned_full = false;

void warn_full_once() {
  if (warned_full) return;
  warned_full = true;
  pg_guarded([] {
    ereport(WARNING, (errmsg("celaest: more than %d API keys used within a day; the rate limits of further keys "
                             "are not enforced until older windows expire",
                             static_cast<int>(kKeySlots))));
  });
}

// fn(window) on the key's window (made when missing; nullptr when the table is full), under
// the windows' lock.
template <typename Fn>
auto with_window(const std::string& key_id, int64_t now_ms, Fn&& fn) {
  bool full = false;
  auto result = segment.locked(LW_EXCLUSIVE, [&](Windows& windows) {
    WindowTable table(windows.cells, kKeySlots);
    KeyWindow* window = table.insert(key_id, [&](const KeyWindow& other) { return stale(other, now_ms); }).slot;
    full = window == nullptr;
    if (window) window->last_used_ms = std::max(window->last_used_ms, now_ms);
    return fn(window);
  });
  if (full) warn_full_once();
  return result;
}

}  // namespace

Admission admit_request(const std::string& key_id, const KeyLimits& limits, int64_t now_ms) {
  return with_window(key_id, now_ms, [&](KeyWindow* window) {
    if (!window) return Admission::Admitted;
    if (window->cooldown_until_ms > now_ms) return Admission::CoolingDown;
    roll(window, now_ms);
    if (limits.rpm && window->minute_requests >= *limits.rpm) return Admission::NoRoom;
    if (limits.tpm && window->minute_tokens >= *limits.tpm) return Admission::NoRoom;
    if (limits.rpd && window->day_requests >= *limits.rpd) return Admission::NoRoom;
    ++window->minute_requests;
    ++window->day_requests;
    return Admission::Admitted;
  });
}

void record_tokens(const std::string& key_id, int64_t tokens, int64_t now_ms) {
  with_window(key_id, now_ms, [&](KeyWindow* window) {
    if (!window) return false;
    roll(window, now_ms);
    window->minute_tokens += tokens;
    return true;
  });
}

void cool_down(const std::string& key_id, int64_t until_ms) {
  with_window(key_id, now_ms(), [&](KeyWindow* window) {
    if (!window) return false;
    window->cooldown_until_ms = std::max(window->cooldown_until_ms, until_ms);
    return true;
  });
}

std::vector<std::pair<std::string, int64_t>> cooling_keys(int64_t now_ms) {
  // Copied into a fixed array under the lock (nothing allocates while it is held), then
  // returned as plain values.
  struct Cooling {
    core::FixedText<37> key_id;
    int64_t until_ms;
  };
  static Cooling found[kKeySlots];
  const size_t count = segment.locked(LW_SHARED, [&](Windows& windows) {
    size_t n = 0;
    for (const auto& cell : windows.cells)
      if (cell.occupied && cell.slot.cooldown_until_ms > now_ms) found[n++] = {cell.slot.key_id, cell.slot.cooldown_until_ms};
    return n;
  });
  std::vector<std::pair<std::string, int64_t>> cooling;
  cooling.reserve(count);
  for (size_t i = 0; i < count; ++i) cooling.emplace_back(std::string(found[i].key_id.view()), found[i].until_ms);
  return cooling;
}

void reserve_shared_memory() { segment.reserve(); }

}  // namespace celaest::pg::key_rate_windows
