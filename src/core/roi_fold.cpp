#include "core/roi_fold.hpp"

#include "core/roi_bytes.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace celaest::core {

namespace {

constexpr std::uint32_t kFoldMagic = 0x524F4946 + 1;  // "ROIG": a run between its steps

}  // namespace

RoiFold::RoiFold(const std::vector<UuidBytes>& organizations, std::vector<std::string> zones,
                 std::vector<std::int32_t> period_of_day, std::size_t periods, std::vector<RoiStaleNote> notes)
    : zones_(std::move(zones)),
      organization_count_(static_cast<std::uint32_t>(organizations.size())),
      period_of_day_(std::move(period_of_day)) {
  if (zones_.size() != organizations.size()) throw std::invalid_argument("ROI fold: one zone per organization");
  for (const UuidBytes& organization : organizations) organizations_.find_or_add(uuid_key(organization));
  if (organizations_.size() != organizations.size()) throw std::invalid_argument("ROI fold: repeated organization");
  std::vector<int> days_per_period(periods, 0);
  for (std::int32_t period : period_of_day_) {
    if (period >= static_cast<std::int64_t>(periods)) throw std::invalid_argument("ROI fold: a day's period");
    if (period >= 0) ++days_per_period[static_cast<std::size_t>(period)];
  }
  for (int days : days_per_period) single_day_period_.push_back(days == 1);
  organization_noted_.assign(organizations.size(), false);
  noted_days_.resize(organizations.size());
  for (const RoiStaleNote& note : notes) {
    if (note.organization && *note.organization >= organizations.size())
      throw std::invalid_argument("ROI fold: a note of an organization outside the run");
    if (note.first_day.has_value() != note.last_day.has_value() || (note.first_day && *note.first_day > *note.last_day))
      throw std::invalid_argument("ROI fold: a note's days");
    has_notes_ = true;
    if (!note.first_day) {
      if (note.organization)
        organization_noted_[*note.organization] = true;
      else
        everything_noted_ = true;
    } else {
      (note.organization ? noted_days_[*note.organization] : noted_everywhere_).add(*note.first_day, *note.last_day);
    }
  }
  noted_everywhere_.index();
  for (NotedSpans& spans : noted_days_) spans.index();
  present_.assign(organizations.size() * period_of_day_.size(), false);
  tally_.index_densely(organizations.size(), periods);
}

void RoiFold::NotedSpans::index() {
  std::sort(spans.begin(), spans.end());
  last_so_far.clear();
  for (const auto& [first, last] : spans)
    last_so_far.push_back(last_so_far.empty() ? last : std::max(last_so_far.back(), last));
}

bool RoiFold::NotedSpans::contains(std::int64_t day) const {
  // The spans that start on or before the day; one of them reaches it if the latest does.
  const auto after = std::upper_bound(spans.begin(), spans.end(), std::make_pair(day, INT64_MAX));
  if (after == spans.begin()) return false;
  return last_so_far[static_cast<std::size_t>(after - spans.begin()) - 1] >= day;
}

bool RoiFold::noted(std::uint32_t organization, std::int64_t day) const {
  if (everything_noted_ || organization_noted_[organization]) return true;
  return noted_days_[organization].contains(day) || noted_everywhere_.contains(day);
}

void RoiFold::count(std::uint32_t organization, std::uint32_t day, const unsigned char* state, std::size_t size) {
  const auto period = static_cast<std::uint32_t>(period_of_day_[day]);
  if (single_day_period_[period]) {
    int scale = 0;
    direct_.push_back(figures_of_group_state(organization, period, state, size, &scale));
    direct_scales_.push_back(scale);
  } else {
    tally_.merge_group_state(organization, period, state, size);
  }
}

bool RoiFold::add_stored(const UuidBytes& organization, std::string_view zone, std::int64_t day,
                         const unsigned char* state, std::size_t size) {
  if (day < 0 || static_cast<std::uint64_t>(day) >= period_of_day_.size()) return false;
  const auto position = organizations_.find(uuid_key(organization));
  if (!position || zones_[*position] != zone) return false;
  const auto d = static_cast<std::uint32_t>(day);
  const std::size_t pair = std::size_t{*position} * period_of_day_.size() + d;
  if (period_of_day_[d] < 0 || present_[pair] || (has_notes_ && noted(*position, day))) return false;
  // A stored day without tasks has no state: present, nothing to count.
  if (state != nullptr) count(*position, d, state, size);
  present_[pair] = true;
  return true;
}

std::vector<RoiFold::Pair> RoiFold::missing() const {
  std::vector<Pair> out;
  const std::size_t days = period_of_day_.size();
  for (std::uint32_t o = 0; o < organization_count_; ++o)
    for (std::uint32_t d = 0; d < days; ++d)
      if (period_of_day_[d] >= 0 && !present_[o * days + d]) out.push_back({o, d});
  return out;
}

void RoiFold::add_fresh(const unsigned char* tally, std::size_t size) {
  const std::size_t days = period_of_day_.size();
  for (const RoiTally::GroupState& group : RoiTally::deserialize(tally, size).group_states()) {
    if (group.period >= days || group.organization >= organization_count_)
      throw std::invalid_argument("ROI fold: a fresh group outside the run");
    const std::size_t pair = std::size_t{group.organization} * days + group.period;
    if (period_of_day_[group.period] < 0 || present_[pair]) continue;
    count(group.organization, group.period, group.bytes.data(), group.bytes.size());
    present_[pair] = true;
  }
}

std::vector<RoiFigures> RoiFold::finish(int* minutes_scale) {
  std::vector<RoiFigures> figures = tally_.finish();
  const int tally_scale = figures.empty() ? 0 : tally_.minutes_scale();
  int scale = tally_scale;
  for (int direct_scale : direct_scales_) scale = std::max(scale, direct_scale);
  const Int128 tally_factor = power_of_ten(scale - tally_scale);
  for (RoiFigures& f : figures) f.prompt_minutes *= tally_factor;
  for (std::size_t i = 0; i < direct_.size(); ++i) {
    RoiFigures f = direct_[i];
    f.prompt_minutes *= power_of_ten(scale - direct_scales_[i]);
    figures.push_back(f);
  }
  *minutes_scale = scale;
  return figures;
}

std::vector<unsigned char> RoiFold::serialize() {
  static_assert(std::is_trivially_copyable_v<RoiFigures>, "written as bytes");
  std::vector<unsigned char> out;
  roi_bytes::Writer writer(&out);
  writer.put(kFoldMagic);
  writer.put(organization_count_);
  writer.put_all(period_of_day_);
  writer.put_all(std::vector<unsigned char>(present_.begin(), present_.end()));
  writer.put_all(std::vector<unsigned char>(single_day_period_.begin(), single_day_period_.end()));
  writer.put_all(direct_);
  writer.put_all(direct_scales_);
  writer.put_all(tally_.serialize());
  return out;
}

RoiFold RoiFold::deserialize(const unsigned char* data, std::size_t size) {
  roi_bytes::Reader in(data, size);
  if (in.get<std::uint32_t>() != kFoldMagic) throw std::invalid_argument("ROI fold: not a run");
  RoiFold fold;
  fold.organization_count_ = in.get<std::uint32_t>();
  fold.period_of_day_ = in.get_all<std::int32_t>();
  const auto present = in.get_all<unsigned char>();
  fold.present_.assign(present.begin(), present.end());
  const auto single = in.get_all<unsigned char>();
  fold.single_day_period_.assign(single.begin(), single.end());
  fold.direct_ = in.get_all<RoiFigures>();
  fold.direct_scales_ = in.get_all<std::int32_t>();
  const auto [tally, tally_size] = in.view_all<unsigned char>();
  if (!in.done()) throw std::invalid_argument("ROI fold: trailing bytes");
  fold.tally_.merge_serialized(tally, tally_size);
  if (fold.present_.size() != std::size_t{fold.organization_count_} * fold.period_of_day_.size() ||
      fold.direct_.size() != fold.direct_scales_.size())
    throw std::invalid_argument("ROI fold: inconsistent run");
  for (std::int32_t period : fold.period_of_day_)
    if (period >= static_cast<std::int64_t>(fold.single_day_period_.size()))
      throw std::invalid_argument("ROI fold: a day's period");
  return fold;
}

}  // namespace celaest::core
