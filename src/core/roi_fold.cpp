#include "core/roi_fold.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace celaest::core {

RoiFold::RoiFold(const std::vector<UuidBytes>& organizations, std::vector<std::string> zones,
                 std::vector<std::int32_t> period_of_day, std::size_t periods,
                 const std::vector<std::uint32_t>& fresh_organizations, const std::vector<std::uint32_t>& fresh_days)
    : zones_(std::move(zones)), period_of_day_(std::move(period_of_day)) {
  if (zones_.size() != organizations.size()) throw std::invalid_argument("ROI fold: one zone per organization");
  if (fresh_organizations.size() != fresh_days.size()) throw std::invalid_argument("ROI fold: fresh pairs");
  for (const UuidBytes& organization : organizations) organizations_.find_or_add(uuid_key(organization));
  if (organizations_.size() != organizations.size()) throw std::invalid_argument("ROI fold: repeated organization");
  for (std::int32_t period : period_of_day_)
    if (period >= static_cast<std::int64_t>(periods)) throw std::invalid_argument("ROI fold: a day's period");
  for (std::size_t i = 0; i < fresh_days.size(); ++i) {
    if (fresh_organizations[i] >= organizations.size() || fresh_days[i] >= period_of_day_.size())
      throw std::invalid_argument("ROI fold: a fresh pair outside the run");
    fresh_.insert(std::uint64_t{fresh_organizations[i]} * period_of_day_.size() + fresh_days[i]);
  }
  std::vector<int> days_per_period(periods, 0);
  for (std::int32_t period : period_of_day_)
    if (period >= 0) ++days_per_period[static_cast<std::size_t>(period)];
  for (int days : days_per_period) single_day_period_.push_back(days == 1);
  tally_.index_densely(organizations.size(), periods);
}

bool RoiFold::add_stored(const UuidBytes& organization, std::string_view zone, std::int64_t day,
                         const unsigned char* state, std::size_t size) {
  if (day < 0 || static_cast<std::uint64_t>(day) >= period_of_day_.size()) return false;
  const auto position = organizations_.find(uuid_key(organization));
  if (!position || zones_[*position] != zone) return false;
  const auto d = static_cast<std::uint32_t>(day);
  const std::int32_t period = period_of_day_[d];
  if (period < 0 || is_fresh(*position, d)) return false;
  if (single_day_period_[static_cast<std::size_t>(period)]) {
    int scale = 0;
    direct_.push_back(figures_of_group_state(*position, static_cast<std::uint32_t>(period), state, size, &scale));
    direct_scales_.push_back(scale);
  } else {
    tally_.merge_group_state(*position, static_cast<std::uint32_t>(period), state, size);
  }
  return true;
}

std::vector<RoiFigures> RoiFold::finish(int* minutes_scale) {
  std::vector<RoiFigures> figures = tally_.finish();
  int scale = figures.empty() ? 0 : tally_.minutes_scale();
  for (int direct_scale : direct_scales_) scale = std::max(scale, direct_scale);
  const Int128 tally_factor = power_of_ten(scale - (figures.empty() ? 0 : tally_.minutes_scale()));
  for (RoiFigures& f : figures) f.prompt_minutes *= tally_factor;
  for (std::size_t i = 0; i < direct_.size(); ++i) {
    RoiFigures f = direct_[i];
    f.prompt_minutes *= power_of_ten(scale - direct_scales_[i]);
    figures.push_back(f);
  }
  *minutes_scale = scale;
  return figures;
}

void RoiFold::add_fresh(const unsigned char* tally, std::size_t size) {
  for (const RoiTally::GroupState& group : RoiTally::deserialize(tally, size).group_states()) {
    if (group.period >= period_of_day_.size() || group.organization >= zones_.size())
      throw std::invalid_argument("ROI fold: a fresh group outside the run");
    const std::int32_t period = period_of_day_[group.period];
    if (period < 0 || !is_fresh(group.organization, group.period)) continue;
    tally_.merge_group_state(group.organization, static_cast<std::uint32_t>(period), group.bytes.data(),
                             group.bytes.size());
  }
}

}  // namespace celaest::core
