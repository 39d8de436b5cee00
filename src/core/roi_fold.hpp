// A run of aggregate_roi over stored days (src/sql/55_roi.sql, "Stored days"), in two steps:
//   1. one pass over the run's rows of _roi_days: each stored organization-day of use to the run
//      (its organization's, in that organization's current zone, inside the run, not touched by
//      a note of a write the run may not consume) is merged into its period — or, when the
//      period is that one day, finished from its state at once — and counted as present;
//   2. the days not present are read from the tasks (a scan by day) and merged the same way.
// Between the two the run travels as bytes (the steps are separate statements).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/index_table.hpp"
#include "core/roi_tally.hpp"
#include "core/uuid_bytes.hpp"

namespace celaest::core {

// A note of a write (celaest._roi_stale) as the run sees it: an organization of the run (none:
// every organization) and the local days the noted writes fall on, as positions among the
// run's days, first to last (none: every day).
struct RoiStaleNote {
  std::optional<std::uint32_t> organization;
  std::optional<std::int64_t> first_day;
  std::optional<std::int64_t> last_day;
};

class RoiFold {
 public:
  // organizations[o] lives in zones[o]; period_of_day[d]: the period (0-based) of the run's
  // local day d, -1 for none; periods: how many; notes: the notes stored days must not be used
  // under. Throws std::invalid_argument on inconsistent sizes.
  RoiFold(const std::vector<UuidBytes>& organizations, std::vector<std::string> zones,
          std::vector<std::int32_t> period_of_day, std::size_t periods, std::vector<RoiStaleNote> notes);

  // Step 1: a stored day (day: its position among the run's days, any integer). Returns whether
  // it counted. Throws std::invalid_argument on a state group_states() did not write.
  bool add_stored(const UuidBytes& organization, std::string_view zone, std::int64_t day, const unsigned char* state,
                  std::size_t size);

  // The (organization, day) pairs of the run no stored day counted for: read them from the tasks.
  struct Pair {
    std::uint32_t organization;
    std::uint32_t day;
  };
  std::vector<Pair> missing() const;

  // Step 2: the groups of a scan by day over the missing pairs (RoiTally::serialize bytes; its
  // periods are the run's days); groups of pairs already counted are left out.
  void add_fresh(const unsigned char* tally, std::size_t size);

  // The figures of every period with a counted day; *minutes_scale receives the scale their
  // prompt minutes are counted in (the largest of the days'). Reorders the kept values.
  std::vector<RoiFigures> finish(int* minutes_scale);

  // The run between the steps, and back (the organizations' ids and zones are not kept: step 1
  // is over). deserialize throws std::invalid_argument on bytes serialize did not write.
  std::vector<unsigned char> serialize();
  static RoiFold deserialize(const unsigned char* data, std::size_t size);

 private:
  RoiFold() = default;
  bool noted(std::uint32_t organization, std::int64_t day) const;
  void count(std::uint32_t organization, std::uint32_t day, const unsigned char* state, std::size_t size);

  IndexTable<UuidKey, UuidKeyHash> organizations_;
  std::vector<std::string> zones_;
  std::uint32_t organization_count_ = 0;
  std::vector<std::int32_t> period_of_day_;
  // The notes, indexed so that a stored day is checked by a search, not against every note (a
  // backfill leaves one note per organization and UTC day): per organization, and for every
  // organization, the noted spans of days sorted by their first day with the latest last day so
  // far; whether an organization, or all, is noted whole.
  struct NotedSpans {
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;  // first, last
    std::vector<std::int64_t> last_so_far;
    void add(std::int64_t first, std::int64_t last) { spans.emplace_back(first, last); }
    void index();
    bool contains(std::int64_t day) const;
  };
  bool has_notes_ = false;
  bool everything_noted_ = false;
  std::vector<bool> organization_noted_;
  std::vector<NotedSpans> noted_days_;
  NotedSpans noted_everywhere_;
  std::vector<bool> present_;  // organization * days + day
  // Periods of exactly one day (a daily run's): a day's figures are read from its state at once
  // (figures_of_group_state), with the scale of its minutes; no group is built.
  std::vector<bool> single_day_period_;
  std::vector<RoiFigures> direct_;
  std::vector<std::int32_t> direct_scales_;
  RoiTally tally_;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
