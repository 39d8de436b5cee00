// Which ROI period a task falls in: its instant read as a local date in its organization's
// time zone, then that date's daily / weekly / monthly (or range) period. The server works
// out where each zone's local days start (AT TIME ZONE, once per zone and day); this only
// places instants between those starts, so a task costs a division and a comparison or two.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace celaest::core {

class RoiCalendar {
 public:
  // zone_of_organization[o]: the zone (0-based) of organization o;
  // day_starts: per zone, days + 1 increasing instants (microseconds): where local days
  //   0 .. days - 1 start, then where the last one ends;
  // period_of_day[d]: the period (0-based) local day d belongs to, or -1 for none.
  // Throws std::invalid_argument when the sizes or zone numbers do not fit together.
  RoiCalendar(std::vector<std::uint32_t> zone_of_organization, std::vector<std::int64_t> day_starts,
              std::vector<std::int32_t> period_of_day);

  // The period of an instant for an organization; -1 when it lies in no period.
  std::int32_t period_of(std::uint32_t organization, std::int64_t instant) const {
    const std::int64_t* starts = day_starts_.data() + zone_of_organization_[organization] * (days_ + 1);
    if (instant < starts[0] || instant >= starts[days_]) return -1;
    // Local days last 23 to 25 hours: the quotient is the day or one next to it.
    auto day = static_cast<std::size_t>((instant - starts[0]) / kMicrosecondsPerDay);
    if (day >= days_) day = days_ - 1;
    while (day > 0 && instant < starts[day]) --day;
    while (day + 1 < days_ && instant >= starts[day + 1]) ++day;
    return period_of_day_[day];
  }

  std::size_t organizations() const noexcept { return zone_of_organization_.size(); }
  // One more than the highest period number of any day.
  std::size_t periods() const noexcept {
    std::int32_t highest = -1;
    for (std::int32_t period : period_of_day_) highest = std::max(highest, period);
    return static_cast<std::size_t>(highest + 1);
  }

 private:
  static constexpr std::int64_t kMicrosecondsPerDay = 86400LL * 1000000LL;
  std::vector<std::uint32_t> zone_of_organization_;
  std::vector<std::int64_t> day_starts_;
  std::vector<std::int32_t> period_of_day_;
  std::size_t days_;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
