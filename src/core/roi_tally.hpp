// The ROI roll-up's one pass over processed_tasks (API.md "ROI"; the rules are written out
// at the top of src/sql/55_roi.sql), natively: each task is placed in its (organization,
// period[, model or prompt]) group and counted there; a group keeps its completed tasks'
// execution times and its users, so that p95/p99 and the active users come out exact.
// Tallies of parts of the table (parallel workers) merge, and travel as bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/decimal.hpp"
#include "core/index_table.hpp"
#include "core/roi_calendar.hpp"
#include "core/uuid_bytes.hpp"

namespace celaest::core {

namespace roi_bytes {  // the tallies' byte format (core/roi_bytes.hpp)
class Writer;
class Reader;
}  // namespace roi_bytes

// One processed_tasks row, as the scan reads it.
struct RoiTaskRow {
  UuidBytes organization{};
  std::int64_t created_at = 0;  // microseconds, the calendar's epoch
  bool completed = false;
  bool failed = false;
  std::int64_t cost_micros = 0;  // cost_usd in millionths (numeric(10,6))
  std::int64_t tokens = 0;
  std::optional<std::int32_t> execution_ms;
  std::optional<std::int32_t> ai_ms;
  UuidBytes user{};
  std::optional<UuidBytes> prompt;
  std::optional<UuidBytes> dimension;  // the model or prompt grouped by; none for totals
};

// Which group a result is of, and its task counts: shared by the tallied figures and the
// finished row (roi_figures.hpp), which carries them over as they are.
struct RoiGroupCounts {
  std::uint32_t organization = 0;  // index into the run's organizations
  std::uint32_t period = 0;        // index into the run's periods
  bool has_dimension = false;
  UuidBytes dimension{};
  std::int64_t tasks_completed = 0;
  std::int64_t tasks_failed = 0;
};

// The figures of one group, as the SQL side finishes them (API.md's formulas).
struct RoiFigures : RoiGroupCounts {
  std::int64_t cost_micros = 0;  // every task
  std::int64_t total_tokens = 0;  // every task
  // Completed tasks with an execution time: mean and percentile_cont(0.95 / 0.99), each
  // rounded half away from zero; none when there are no such tasks.
  std::optional<std::int32_t> avg_execution_ms;
  std::optional<std::int32_t> p95_execution_ms;
  std::optional<std::int32_t> p99_execution_ms;
  Int128 prompt_minutes = 0;  // completed tasks whose prompt names its manual minutes, scaled
  std::int64_t default_minute_tasks = 0;  // completed tasks whose prompt does not
  std::int64_t ai_ms = 0;                 // completed tasks
  std::int64_t active_users = 0;          // distinct users, every task
};

// A uuid as two words: compared and hashed without a call to memcmp.
struct UuidKey {
  std::uint64_t high;
  std::uint64_t low;
  bool operator==(const UuidKey& other) const noexcept { return high == other.high && low == other.low; }
};
UuidKey uuid_key(const UuidBytes& uuid) noexcept;
UuidBytes uuid_of_key(const UuidKey& key) noexcept;
struct UuidKeyHash {
  std::uint64_t operator()(const UuidKey& key) const noexcept { return mix64(key.high ^ mix64(key.low)); }
};

class RoiTally {
 public:
  // minutes_scale: the decimals the prompts' manual minutes are counted in.
  explicit RoiTally(int minutes_scale = 0) : minutes_scale_(minutes_scale) {}

  int minutes_scale() const noexcept { return minutes_scale_; }

  // Counts a task in its group; prompt_minutes: its prompt's manual minutes (scaled), if any.
  void add(std::uint32_t organization, std::uint32_t period, const RoiTaskRow& task,
           const std::optional<Int128>& prompt_minutes);

  void merge(const RoiTally& other);

  // Groups without a dimension of organizations 0..organizations-1 and periods
  // 0..periods-1 are found by position instead of by hash (when that table is small enough).
  void index_densely(std::size_t organizations, std::size_t periods);

  // The bytes of this tally (drops repeated users first), and back. deserialize throws
  // std::invalid_argument on bytes serialize did not write.
  std::vector<unsigned char> serialize();
  static RoiTally deserialize(const unsigned char* data, std::size_t size);
  // merge(deserialize(data, size)) without building that tally first (the leader's serial
  // step after the parallel scan: one copy of the workers' values instead of two).
  void merge_serialized(const unsigned char* data, std::size_t size);

  // The figures of every group (reorders the kept values).
  std::vector<RoiFigures> finish();

  // One group's tally on its own, as bytes: what celaest._roi_days keeps per organization and
  // local day, so that a later run merges stored days into its periods instead of reading
  // their tasks again; its execution times in ascending order (a period of one day reads its
  // percentiles straight from them). Groups split by a dimension have no such state.
  struct GroupState {
    std::uint32_t organization = 0;
    std::uint32_t period = 0;
    std::vector<unsigned char> bytes;
  };
  std::vector<GroupState> group_states();
  // Adds a state group_states() wrote to group (organization, period). States tallied with
  // other minutes scales (prompts' minutes written with more or fewer decimals since) are
  // brought to the larger of the two scales. Throws std::invalid_argument on other bytes.
  void merge_group_state(std::uint32_t organization, std::uint32_t period, const unsigned char* data,
                         std::size_t size);

 private:
  struct GroupKey {
    std::uint32_t organization;
    std::uint32_t period;
    std::uint32_t dimension;  // 0: none; else 1 + index into dimensions_
    bool operator==(const GroupKey& other) const noexcept {
      return organization == other.organization && period == other.period && dimension == other.dimension;
    }
  };
  struct GroupKeyHash {
    std::uint64_t operator()(const GroupKey& key) const noexcept {
      return mix64((std::uint64_t{key.organization} << 32 | key.period) ^ mix64(key.dimension));
    }
  };
  struct Group {
    GroupKey key{};
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::int64_t cost_micros = 0;
    std::int64_t tokens = 0;
    std::int64_t execution_sum = 0;
    std::int64_t ai_ms = 0;
    std::int64_t default_minute_tasks = 0;
    Int128 prompt_minutes = 0;
    std::vector<std::int32_t> execution_ms;
    // execution_ms is in ascending order: it came from one stored state (group_states() writes
    // them sorted) and nothing was added since; its percentiles are then read, not selected.
    bool execution_sorted = false;
    // The group's users, deduplicated here rather than numbered in a tally-wide table: a
    // group's few users are searched in one short run of memory, where the tally-wide hash
    // table (every user of every organization) cost a cache miss per task.
    std::vector<UuidKey> users;
  };

  Group& group(std::uint32_t organization, std::uint32_t period, const std::optional<UuidBytes>& dimension);
  static void add_user(Group& group, const UuidKey& user);
  // Prompt minutes counted at minutes_scale_ from now on: every group's are multiplied by
  // 10^(scale - minutes_scale_) (scale must not be smaller).
  void raise_minutes_scale(int scale);
  // A group's counts, values and users as bytes; add_counts adds them to a group, its prompt
  // minutes multiplied by minutes_factor.
  static void write_counts(roi_bytes::Writer& writer, const Group& g);
  static void add_counts(roi_bytes::Reader& reader, Group& g, const Int128& minutes_factor);

  int minutes_scale_;
  std::vector<Group> groups_;
  IndexTable<GroupKey, GroupKeyHash> group_index_;  // groups not found by position
  std::vector<std::uint32_t> hashed_groups_;         // group_index_'s numbers -> groups_
  std::vector<std::uint32_t> dense_index_;  // organization * dense_periods_ + period -> group + 1
  std::size_t dense_periods_ = 0;
  std::vector<UuidKey> dimensions_;
  IndexTable<UuidKey, UuidKeyHash> dimension_index_;

  friend class RoiScan;
};

// A run of the scan: the calendar, the organizations and the prompts' manual minutes it was
// set up with, and the tally of the tasks added so far.
class RoiScan {
 public:
  // organizations[o] lives in zone zone_of_organization[o] (see RoiCalendar);
  // prompt_minutes[i]: the manual minutes (non-negative decimal text) of prompts[i].
  // Throws std::invalid_argument on inconsistent sizes or minutes that are not such numbers.
  RoiScan(const std::vector<UuidBytes>& organizations, RoiCalendar calendar, const std::vector<UuidBytes>& prompts,
          const std::vector<std::string>& prompt_minutes);

  // Counts the task, unless its organization is not in the run or it lies in no period.
  void add(const RoiTaskRow& task) {
    const auto organization = organizations_.find(uuid_key(task.organization));
    if (!organization) return;
    const std::int32_t period = calendar_.period_of(*organization, task.created_at);
    if (period < 0) return;
    std::optional<Int128> minutes;
    if (task.completed && task.prompt) {
      if (const auto prompt = prompts_.find(uuid_key(*task.prompt))) minutes = prompt_minutes_[*prompt];
    }
    tally_.add(*organization, static_cast<std::uint32_t>(period), task, minutes);
  }

  RoiTally& tally() noexcept { return tally_; }

 private:
  IndexTable<UuidKey, UuidKeyHash> organizations_;
  RoiCalendar calendar_;
  IndexTable<UuidKey, UuidKeyHash> prompts_;
  std::vector<Int128> prompt_minutes_;
  RoiTally tally_;
};

// The figures of one group state (group_states()) on its own, without building a group: for a
// period of one stored day. *minutes_scale receives the scale its prompt minutes are counted
// in. Throws std::invalid_argument on other bytes.
RoiFigures figures_of_group_state(std::uint32_t organization, std::uint32_t period, const unsigned char* data,
                                  std::size_t size, int* minutes_scale);

// The figures as bytes (a same-binary hand-over from the aggregate's final function to the
// function that returns them as rows), and back; decode throws std::invalid_argument.
std::vector<unsigned char> encode_figures(const std::vector<RoiFigures>& figures, int minutes_scale);
std::vector<RoiFigures> decode_figures(const unsigned char* data, std::size_t size, int* minutes_scale);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
