#include "core/roi_tally.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/percentile.hpp"
#include "core/roi_bytes.hpp"

namespace celaest::core {


namespace {

using roi_bytes::Reader;
using roi_bytes::Writer;

constexpr std::uint32_t kTallyMagic = 0x524F4931;    // "ROI1"
constexpr std::uint32_t kFiguresMagic = 0x524F4946;  // "ROIF"
constexpr std::uint32_t kGroupMagic = 0x524F4944;    // "ROID": one group's state, stored
constexpr int kMaxMinutesScale = 18;

// Drops repeated users; the order does not matter.
void compact_users(std::vector<UuidKey>& users) {
  std::sort(users.begin(), users.end(), [](const UuidKey& a, const UuidKey& b) {
    return a.high != b.high ? a.high < b.high : a.low < b.low;
  });
  users.erase(std::unique(users.begin(), users.end()), users.end());
}

// Below this many kept users a group looks for a repeat before appending.
constexpr std::size_t kLinearUserSearch = 64;
constexpr std::size_t kMaxDenseIndex = std::size_t{1} << 24;

// sum / count rounded half away from zero, exactly (as numeric's round(avg(...))).
std::int32_t rounded_mean(std::int64_t sum, std::int64_t count) {
  std::int64_t quotient = sum / count;
  const std::int64_t remainder = sum % count;
  if (2 * (remainder < 0 ? -remainder : remainder) >= count) quotient += sum < 0 ? -1 : 1;
  return static_cast<std::int32_t>(quotient);
}

}  // namespace

UuidKey uuid_key(const UuidBytes& uuid) noexcept {
  UuidKey key;
  std::memcpy(&key.high, uuid.data(), sizeof key.high);
  std::memcpy(&key.low, uuid.data() + sizeof key.high, sizeof key.low);
  return key;
}

UuidBytes uuid_of_key(const UuidKey& key) noexcept {
  UuidBytes uuid;
  std::memcpy(uuid.data(), &key.high, sizeof key.high);
  std::memcpy(uuid.data() + sizeof key.high, &key.low, sizeof key.low);
  return uuid;
}

void RoiTally::index_densely(std::size_t organizations, std::size_t periods) {
  if (!groups_.empty() || organizations * periods > kMaxDenseIndex) return;
  dense_index_.assign(organizations * periods, 0);
  dense_periods_ = periods;
  groups_.reserve(organizations * periods);
}

RoiTally::Group& RoiTally::group(std::uint32_t organization, std::uint32_t period,
                                 const std::optional<UuidBytes>& dimension) {
  std::uint32_t* dense = nullptr;
  if (!dimension && !dense_index_.empty()) {
    dense = &dense_index_[std::size_t{organization} * dense_periods_ + period];
    if (*dense != 0) return groups_[*dense - 1];
  }
  std::uint32_t dimension_slot = 0;
  if (dimension) {
    const UuidKey key = uuid_key(*dimension);
    dimension_slot = 1 + dimension_index_.find_or_add(key);
    if (dimension_slot > dimensions_.size()) dimensions_.push_back(key);
  }
  const GroupKey key{organization, period, dimension_slot};
  if (dense != nullptr) {  // a new group: the hash table holds only the others
    groups_.emplace_back();
    groups_.back().key = key;
    *dense = static_cast<std::uint32_t>(groups_.size());
    return groups_.back();
  }
  // The hash table numbers only its own keys: hashed_groups_ says where each one's group is.
  const std::uint32_t slot = group_index_.find_or_add(key);
  if (slot == hashed_groups_.size()) {
    hashed_groups_.push_back(static_cast<std::uint32_t>(groups_.size()));
    groups_.emplace_back();
    groups_.back().key = key;
  }
  return groups_[hashed_groups_[slot]];
}

void RoiTally::add_user(Group& group, const UuidKey& user) {
  std::vector<UuidKey>& users = group.users;
  if (users.size() < kLinearUserSearch) {
    if (std::find(users.begin(), users.end(), user) == users.end()) users.push_back(user);
    return;
  }
  // Many users: append, and drop the repeats before growing, so that the list stays within
  // about twice the number of distinct users.
  if (users.size() == users.capacity()) {
    compact_users(users);
    if (users.size() * 2 > users.capacity()) users.reserve(users.capacity() * 2);
  }
  users.push_back(user);
}

void RoiTally::add(std::uint32_t organization, std::uint32_t period, const RoiTaskRow& task,
                   const std::optional<Int128>& prompt_minutes) {
  Group& g = group(organization, period, task.dimension);
  g.cost_micros += task.cost_micros;
  g.tokens += task.tokens;
  add_user(g, uuid_key(task.user));
  if (task.failed) ++g.failed;
  if (!task.completed) return;
  ++g.completed;
  if (task.execution_ms) {
    g.execution_sum += *task.execution_ms;
    g.execution_ms.push_back(*task.execution_ms);
    g.execution_sorted = false;
  }
  if (task.ai_ms) g.ai_ms += *task.ai_ms;
  if (prompt_minutes)
    g.prompt_minutes += *prompt_minutes;
  else
    ++g.default_minute_tasks;
}

void RoiTally::merge(const RoiTally& other) {
  if (groups_.empty()) {
    minutes_scale_ = other.minutes_scale_;
    if (dense_index_.empty() && other.dense_periods_ != 0)
      index_densely(other.dense_index_.size() / other.dense_periods_, other.dense_periods_);
  }
  if (other.minutes_scale_ != minutes_scale_) throw std::invalid_argument("ROI tally: merging different scales");
  for (const Group& theirs : other.groups_) {
    std::optional<UuidBytes> dimension;
    if (theirs.key.dimension != 0) dimension = uuid_of_key(other.dimensions_[theirs.key.dimension - 1]);
    Group& g = group(theirs.key.organization, theirs.key.period, dimension);
    g.completed += theirs.completed;
    g.failed += theirs.failed;
    g.cost_micros += theirs.cost_micros;
    g.tokens += theirs.tokens;
    g.execution_sum += theirs.execution_sum;
    g.ai_ms += theirs.ai_ms;
    g.default_minute_tasks += theirs.default_minute_tasks;
    g.prompt_minutes += theirs.prompt_minutes;
    g.execution_ms.insert(g.execution_ms.end(), theirs.execution_ms.begin(), theirs.execution_ms.end());
    g.execution_sorted = false;
    g.users.insert(g.users.end(), theirs.users.begin(), theirs.users.end());
    // Short lists stay as they are (finish() drops the repeats once); long ones are kept
    // within about twice their distinct users.
    if (g.users.size() >= kLinearUserSearch) compact_users(g.users);
  }
}

std::vector<unsigned char> RoiTally::serialize() {
  std::size_t size = 4 * sizeof(std::uint64_t);
  for (Group& g : groups_) {
    compact_users(g.users);
    size += sizeof(Group) + g.execution_ms.size() * sizeof(std::int32_t) + g.users.size() * sizeof(UuidKey);
  }
  std::vector<unsigned char> out;
  out.reserve(size);
  Writer writer(&out);
  writer.put(kTallyMagic);
  writer.put<std::int32_t>(minutes_scale_);
  writer.put<std::uint64_t>(dense_periods_ == 0 ? 0 : dense_index_.size() / dense_periods_);
  writer.put<std::uint64_t>(dense_periods_);
  writer.put<std::uint64_t>(groups_.size());
  for (const Group& g : groups_) {
    writer.put(g.key.organization);
    writer.put(g.key.period);
    writer.put<std::uint8_t>(g.key.dimension != 0);
    writer.put(g.key.dimension != 0 ? uuid_of_key(dimensions_[g.key.dimension - 1]) : UuidBytes{});
    write_counts(writer, g);
  }
  return out;
}

RoiTally RoiTally::deserialize(const unsigned char* data, std::size_t size) {
  RoiTally tally;
  tally.merge_serialized(data, size);
  return tally;
}

void RoiTally::merge_serialized(const unsigned char* data, std::size_t size) {
  Reader reader(data, size);
  if (reader.get<std::uint32_t>() != kTallyMagic) throw std::invalid_argument("ROI tally: not a tally");
  const auto minutes_scale = reader.get<std::int32_t>();
  const auto dense_organizations = reader.get<std::uint64_t>();
  const auto dense_periods = reader.get<std::uint64_t>();
  if (groups_.empty()) {
    minutes_scale_ = minutes_scale;
    if (dense_index_.empty() && dense_periods != 0) index_densely(dense_organizations, dense_periods);
  }
  if (minutes_scale != minutes_scale_) throw std::invalid_argument("ROI tally: merging different scales");
  const auto groups = reader.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < groups; ++i) {
    const auto organization = reader.get<std::uint32_t>();
    const auto period = reader.get<std::uint32_t>();
    const bool has_dimension = reader.get<std::uint8_t>() != 0;
    const auto dimension = reader.get<UuidBytes>();
    Group& g = group(organization, period, has_dimension ? std::optional<UuidBytes>(dimension) : std::nullopt);
    add_counts(reader, g, 1);
  }
  if (!reader.done()) throw std::invalid_argument("ROI tally: trailing bytes");
}

void RoiTally::write_counts(Writer& writer, const Group& g) {
  writer.put(g.completed);
  writer.put(g.failed);
  writer.put(g.cost_micros);
  writer.put(g.tokens);
  writer.put(g.execution_sum);
  writer.put(g.ai_ms);
  writer.put(g.default_minute_tasks);
  writer.put(g.prompt_minutes);
  writer.put_all(g.execution_ms);
  writer.put_all(g.users);
}

void RoiTally::add_counts(Reader& reader, Group& g, const Int128& minutes_factor) {
  g.completed += reader.get<std::int64_t>();
  g.failed += reader.get<std::int64_t>();
  g.cost_micros += reader.get<std::int64_t>();
  g.tokens += reader.get<std::int64_t>();
  g.execution_sum += reader.get<std::int64_t>();
  g.ai_ms += reader.get<std::int64_t>();
  g.default_minute_tasks += reader.get<std::int64_t>();
  g.prompt_minutes += reader.get<Int128>() * minutes_factor;
  reader.append_all(g.execution_ms);
  g.execution_sorted = false;
  const bool had_users = !g.users.empty();
  reader.append_all(g.users);
  // As merge(): long lists are kept within about twice their distinct users (a list
  // serialize() wrote is free of repeats already).
  if (had_users && g.users.size() >= kLinearUserSearch) compact_users(g.users);
}

std::vector<RoiTally::GroupState> RoiTally::group_states() {
  std::vector<GroupState> states;
  states.reserve(groups_.size());
  for (Group& g : groups_) {
    if (g.key.dimension != 0) continue;
    compact_users(g.users);
    if (!g.execution_sorted) std::sort(g.execution_ms.begin(), g.execution_ms.end());
    g.execution_sorted = true;
    GroupState state;
    state.organization = g.key.organization;
    state.period = g.key.period;
    state.bytes.reserve(sizeof(Group) + g.execution_ms.size() * sizeof(std::int32_t) +
                        g.users.size() * sizeof(UuidKey));
    Writer writer(&state.bytes);
    writer.put(kGroupMagic);
    writer.put<std::int32_t>(minutes_scale_);
    write_counts(writer, g);
    states.push_back(std::move(state));
  }
  return states;
}

void RoiTally::merge_group_state(std::uint32_t organization, std::uint32_t period, const unsigned char* data,
                                 std::size_t size) {
  Reader reader(data, size);
  if (reader.get<std::uint32_t>() != kGroupMagic) throw std::invalid_argument("ROI tally: not a group state");
  const auto scale = reader.get<std::int32_t>();
  if (scale < 0 || scale > kMaxMinutesScale) throw std::invalid_argument("ROI tally: a state's minutes scale");
  if (scale > minutes_scale_) raise_minutes_scale(scale);
  Group& g = group(organization, period, std::nullopt);
  const bool first_values = g.execution_ms.empty();
  add_counts(reader, g, power_of_ten(minutes_scale_ - scale));
  if (!reader.done()) throw std::invalid_argument("ROI tally: trailing bytes");
  // A state's values are sorted (group_states()); into a group without values they stay so.
  g.execution_sorted = first_values && std::is_sorted(g.execution_ms.begin(), g.execution_ms.end());
}

void RoiTally::raise_minutes_scale(int scale) {
  const Int128 factor = power_of_ten(scale - minutes_scale_);
  for (Group& g : groups_) g.prompt_minutes *= factor;
  minutes_scale_ = scale;
}

std::vector<RoiFigures> RoiTally::finish() {
  std::vector<RoiFigures> figures;
  figures.reserve(groups_.size());
  for (Group& g : groups_) {
    RoiFigures f;
    f.organization = g.key.organization;
    f.period = g.key.period;
    f.has_dimension = g.key.dimension != 0;
    if (f.has_dimension) f.dimension = uuid_of_key(dimensions_[g.key.dimension - 1]);
    f.tasks_completed = g.completed;
    f.tasks_failed = g.failed;
    f.cost_micros = g.cost_micros;
    f.total_tokens = g.tokens;
    if (!g.execution_ms.empty()) {
      const std::size_t n = g.execution_ms.size();
      f.avg_execution_ms = rounded_mean(g.execution_sum, static_cast<std::int64_t>(n));
      const auto percentile = [&](double fraction) {
        const double value = g.execution_sorted ? percentile_cont_sorted(g.execution_ms.data(), n, fraction)
                                                : percentile_cont(g.execution_ms.data(), n, fraction);
        return static_cast<std::int32_t>(round_half_away_from_zero(value));
      };
      f.p95_execution_ms = percentile(0.95);
      f.p99_execution_ms = percentile(0.99);
    }
    f.prompt_minutes = g.prompt_minutes;
    f.default_minute_tasks = g.default_minute_tasks;
    f.ai_ms = g.ai_ms;
    compact_users(g.users);
    f.active_users = static_cast<std::int64_t>(g.users.size());
    figures.push_back(f);
  }
  return figures;
}

RoiFigures figures_of_group_state(std::uint32_t organization, std::uint32_t period, const unsigned char* data,
                                  std::size_t size, int* minutes_scale) {
  Reader reader(data, size);
  if (reader.get<std::uint32_t>() != kGroupMagic) throw std::invalid_argument("ROI tally: not a group state");
  const auto scale = reader.get<std::int32_t>();
  if (scale < 0 || scale > kMaxMinutesScale) throw std::invalid_argument("ROI tally: a state's minutes scale");
  *minutes_scale = scale;
  RoiFigures f;
  f.organization = organization;
  f.period = period;
  f.tasks_completed = reader.get<std::int64_t>();
  f.tasks_failed = reader.get<std::int64_t>();
  f.cost_micros = reader.get<std::int64_t>();
  f.total_tokens = reader.get<std::int64_t>();
  const auto execution_sum = reader.get<std::int64_t>();
  f.ai_ms = reader.get<std::int64_t>();
  f.default_minute_tasks = reader.get<std::int64_t>();
  f.prompt_minutes = reader.get<Int128>();
  // The values and users are read where they lie (a stored state has them sorted, the users
  // free of repeats: nothing to allocate or copy); a state that is not so is finished the long
  // way, as a group would be.
  const auto [value_bytes, n] = reader.view_all<std::int32_t>();
  const auto [user_bytes, user_count] = reader.view_all<UuidKey>();
  if (!reader.done()) throw std::invalid_argument("ROI tally: trailing bytes");
  const auto value_at = [&, value_bytes = value_bytes](std::size_t i) {
    std::int32_t value;
    std::memcpy(&value, value_bytes + i * sizeof value, sizeof value);
    return value;
  };
  if (n > 0) {
    bool sorted = true;
    for (std::size_t i = 1; i < n && sorted; ++i) sorted = value_at(i - 1) <= value_at(i);
    std::vector<std::int32_t> copy;
    if (!sorted) {
      copy.resize(n);
      std::memcpy(copy.data(), value_bytes, n * sizeof(std::int32_t));
    }
    const auto percentile = [&, n = n](double fraction) {
      double value;
      if (sorted) {
        const PercentilePositions at = percentile_positions(n, fraction);
        value = percentile_between(value_at(at.first_row), value_at(at.second_row), at);
      } else {
        value = percentile_cont(copy.data(), n, fraction);
      }
      return static_cast<std::int32_t>(round_half_away_from_zero(value));
    };
    f.avg_execution_ms = rounded_mean(execution_sum, static_cast<std::int64_t>(n));
    f.p95_execution_ms = percentile(0.95);
    f.p99_execution_ms = percentile(0.99);
  }
  const auto user_at = [&, user_bytes = user_bytes](std::size_t i) {
    UuidKey key;
    std::memcpy(&key, user_bytes + i * sizeof key, sizeof key);
    return key;
  };
  bool distinct_ascending = true;
  for (std::size_t i = 1; i < user_count && distinct_ascending; ++i) {
    const UuidKey a = user_at(i - 1);
    const UuidKey b = user_at(i);
    distinct_ascending = a.high != b.high ? a.high < b.high : a.low < b.low;
  }
  if (distinct_ascending) {
    f.active_users = static_cast<std::int64_t>(user_count);
  } else {
    std::vector<UuidKey> users(user_count);
    std::memcpy(users.data(), user_bytes, user_count * sizeof(UuidKey));
    compact_users(users);
    f.active_users = static_cast<std::int64_t>(users.size());
  }
  return f;
}

RoiScan::RoiScan(const std::vector<UuidBytes>& organizations, RoiCalendar calendar,
                 const std::vector<UuidBytes>& prompts, const std::vector<std::string>& prompt_minutes)
    : calendar_(std::move(calendar)) {
  if (organizations.size() != calendar_.organizations())
    throw std::invalid_argument("ROI scan: one zone per organization");
  if (prompts.size() != prompt_minutes.size()) throw std::invalid_argument("ROI scan: one minutes value per prompt");
  for (const UuidBytes& organization : organizations) organizations_.find_or_add(uuid_key(organization));
  if (organizations_.size() != organizations.size()) throw std::invalid_argument("ROI scan: repeated organization");
  // Every prompt's minutes in the same decimals, so that their sums stay exact integers;
  // minutes written with more than 18 decimals are rounded to 18.
  int scale = 0;
  for (const std::string& minutes : prompt_minutes) scale = std::max(scale, decimal_places(minutes));
  scale = std::min(scale, kMaxMinutesScale);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto minutes = parse_scaled_decimal(prompt_minutes[i], scale);
    if (!minutes) throw std::invalid_argument("ROI scan: manual minutes that are not a non-negative number");
    if (prompts_.find_or_add(uuid_key(prompts[i])) == prompt_minutes_.size()) prompt_minutes_.push_back(*minutes);
  }
  tally_ = RoiTally(scale);
  tally_.index_densely(organizations.size(), calendar_.periods());
}

std::vector<unsigned char> encode_figures(const std::vector<RoiFigures>& figures, int minutes_scale) {
  static_assert(std::is_trivially_copyable_v<RoiFigures>, "figures are handed over as bytes");
  std::vector<unsigned char> out;
  out.reserve(2 * sizeof(std::uint64_t) + figures.size() * sizeof(RoiFigures));
  Writer writer(&out);
  writer.put(kFiguresMagic);
  writer.put<std::int32_t>(minutes_scale);
  writer.put_all(figures);
  return out;
}

std::vector<RoiFigures> decode_figures(const unsigned char* data, std::size_t size, int* minutes_scale) {
  Reader reader(data, size);
  if (reader.get<std::uint32_t>() != kFiguresMagic) throw std::invalid_argument("ROI figures: not figures");
  *minutes_scale = reader.get<std::int32_t>();
  auto figures = reader.get_all<RoiFigures>();
  if (!reader.done()) throw std::invalid_argument("ROI figures: trailing bytes");
  return figures;
}

}  // namespace celaest::core
