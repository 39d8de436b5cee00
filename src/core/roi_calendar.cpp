#include "core/roi_calendar.hpp"

#include <stdexcept>
#include <utility>

namespace celaest::core {

RoiCalendar::RoiCalendar(std::vector<std::uint32_t> zone_of_organization, std::vector<std::int64_t> day_starts,
                         std::vector<std::int32_t> period_of_day)
    : zone_of_organization_(std::move(zone_of_organization)),
      day_starts_(std::move(day_starts)),
      period_of_day_(std::move(period_of_day)),
      days_(period_of_day_.size()) {
  if (days_ == 0 || day_starts_.size() % (days_ + 1) != 0)
    throw std::invalid_argument("ROI calendar: day starts do not match the days");
  const std::size_t zones = day_starts_.size() / (days_ + 1);
  for (std::uint32_t zone : zone_of_organization_)
    if (zone >= zones) throw std::invalid_argument("ROI calendar: organization in an unknown zone");
  for (std::size_t z = 0; z < zones; ++z)
    for (std::size_t d = 0; d < days_; ++d)
      if (day_starts_[z * (days_ + 1) + d] >= day_starts_[z * (days_ + 1) + d + 1])
        throw std::invalid_argument("ROI calendar: day starts must increase");
}

}  // namespace celaest::core
