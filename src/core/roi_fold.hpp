// A run of aggregate_roi over stored days (src/sql/55_roi.sql, "Stored days"): each stored
// organization-day is merged into its period (or, when the period is that one day, finished
// from its state at once), unless it is of no use to this run (another
// organization, a zone the organization no longer has, a day outside the run) or this run read
// that day from the tasks again ("fresh"): then the fresh tally's group counts instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/index_table.hpp"
#include "core/roi_tally.hpp"
#include "core/uuid_bytes.hpp"

namespace celaest::core {

class RoiFold {
 public:
  // organizations[o] lives in zones[o]; period_of_day[d]: the period (0-based) of the run's
  // local day d, -1 for none; periods: how many; fresh_organizations[i], fresh_days[i]: the
  // (organization, day) pairs read from the tasks by this run. Throws std::invalid_argument on
  // inconsistent sizes or positions.
  RoiFold(const std::vector<UuidBytes>& organizations, std::vector<std::string> zones,
          std::vector<std::int32_t> period_of_day, std::size_t periods,
          const std::vector<std::uint32_t>& fresh_organizations, const std::vector<std::uint32_t>& fresh_days);

  // A stored day (day: its position among the run's days, any integer). Returns whether it
  // counted. Throws std::invalid_argument on a state group_states() did not write.
  bool add_stored(const UuidBytes& organization, std::string_view zone, std::int64_t day, const unsigned char* state,
                  std::size_t size);

  // The fresh days' groups of a scan by day (RoiTally::serialize bytes; its periods are the
  // run's days): only the fresh pairs count.
  void add_fresh(const unsigned char* tally, std::size_t size);

  // The figures of every period with a counted day; *minutes_scale receives the scale their
  // prompt minutes are counted in (the largest of the days'). Reorders the kept values.
  std::vector<RoiFigures> finish(int* minutes_scale);

 private:
  bool is_fresh(std::uint32_t organization, std::uint32_t day) const {
    return fresh_.count(std::uint64_t{organization} * period_of_day_.size() + day) != 0;
  }

  IndexTable<UuidKey, UuidKeyHash> organizations_;
  std::vector<std::string> zones_;
  std::vector<std::int32_t> period_of_day_;
  std::unordered_set<std::uint64_t> fresh_;
  // Periods of exactly one day (a daily run's): a stored day's figures are read from its state
  // at once (figures_of_group_state), with the scale of its minutes; no group is built.
  std::vector<bool> single_day_period_;
  std::vector<RoiFigures> direct_;
  std::vector<int> direct_scales_;
  RoiTally tally_;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
