#include "core/roi_tally.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/percentile.hpp"

namespace celaest::core {

namespace {

constexpr std::uint32_t kTallyMagic = 0x524F4931;    // "ROI1"
constexpr std::uint32_t kFiguresMagic = 0x524F4946;  // "ROIF"
constexpr int kMaxMinutesScale = 18;

class Writer {
 public:
  explicit Writer(std::vector<unsigned char>* out) : out_(out) {}
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "written as bytes");
    const auto* bytes = reinterpret_cast<const unsigned char*>(&value);
    out_->insert(out_->end(), bytes, bytes + sizeof value);
  }
  template <typename T>
  void put_all(const std::vector<T>& values) {
    put<std::uint64_t>(values.size());
    const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
    out_->insert(out_->end(), bytes, bytes + values.size() * sizeof(T));
  }

 private:
  std::vector<unsigned char>* out_;
};

class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size) : data_(data), left_(size) {}
  template <typename T>
  T get() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  template <typename T>
  std::vector<T> get_all() {
    const auto count = get<std::uint64_t>();
    if (count > left_ / sizeof(T)) throw std::invalid_argument("ROI tally: truncated bytes");
    std::vector<T> values(count);
    take(values.data(), count * sizeof(T));
    return values;
  }
  bool done() const noexcept { return left_ == 0; }

 private:
  void take(void* out, std::size_t size) {
    if (size > left_) throw std::invalid_argument("ROI tally: truncated bytes");
    std::memcpy(out, data_, size);
    data_ += size;
    left_ -= size;
  }
  const unsigned char* data_;
  std::size_t left_;
};

// Drops repeated users; the order does not matter.
void compact_users(std::vector<UuidBytes>& users) { users.resize(sort_unique(users.data(), users.size())); }

// sum / count rounded half away from zero, exactly (as numeric's round(avg(...))).
std::int32_t rounded_mean(std::int64_t sum, std::int64_t count) {
  std::int64_t quotient = sum / count;
  const std::int64_t remainder = sum % count;
  if (2 * (remainder < 0 ? -remainder : remainder) >= count) quotient += sum < 0 ? -1 : 1;
  return static_cast<std::int32_t>(quotient);
}

}  // namespace

std::uint64_t RoiTally::UuidHash::operator()(const UuidBytes& uuid) const noexcept {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  std::memcpy(&high, uuid.data(), sizeof high);
  std::memcpy(&low, uuid.data() + sizeof high, sizeof low);
  return mix64(high ^ mix64(low));
}

RoiTally::Group& RoiTally::group(std::uint32_t organization, std::uint32_t period,
                                 const std::optional<UuidBytes>& dimension) {
  std::uint32_t dimension_slot = 0;
  if (dimension) {
    dimension_slot = 1 + dimension_index_.find_or_add(*dimension);
    if (dimension_slot > dimensions_.size()) dimensions_.push_back(*dimension);
  }
  const GroupKey key{organization, period, dimension_slot};
  const std::uint32_t index = group_index_.find_or_add(key);
  if (index == groups_.size()) {
    groups_.emplace_back();
    groups_.back().key = key;
  }
  return groups_[index];
}

void RoiTally::add_user(Group& group, const UuidBytes& user) {
  std::vector<UuidBytes>& users = group.users;
  // A user has many tasks in a period: drop the repeats before growing, so that the list
  // stays within about twice the number of distinct users.
  if (users.size() == users.capacity() && users.size() >= 32) {
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
  add_user(g, task.user);
  if (task.failed) ++g.failed;
  if (!task.completed) return;
  ++g.completed;
  if (task.execution_ms) {
    g.execution_sum += *task.execution_ms;
    g.execution_ms.push_back(*task.execution_ms);
  }
  if (task.ai_ms) g.ai_ms += *task.ai_ms;
  if (prompt_minutes)
    g.prompt_minutes += *prompt_minutes;
  else
    ++g.default_minute_tasks;
}

void RoiTally::merge(const RoiTally& other) {
  if (groups_.empty()) minutes_scale_ = other.minutes_scale_;
  if (other.minutes_scale_ != minutes_scale_) throw std::invalid_argument("ROI tally: merging different scales");
  for (const Group& theirs : other.groups_) {
    std::optional<UuidBytes> dimension;
    if (theirs.key.dimension != 0) dimension = other.dimensions_[theirs.key.dimension - 1];
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
    g.users.insert(g.users.end(), theirs.users.begin(), theirs.users.end());
    if (g.users.size() >= 64) compact_users(g.users);
  }
}

std::vector<unsigned char> RoiTally::serialize() {
  std::size_t size = 3 * sizeof(std::uint64_t);
  for (Group& g : groups_) {
    compact_users(g.users);
    size += sizeof(Group) + g.execution_ms.size() * sizeof(std::int32_t) + g.users.size() * sizeof(UuidBytes);
  }
  std::vector<unsigned char> out;
  out.reserve(size);
  Writer writer(&out);
  writer.put(kTallyMagic);
  writer.put<std::int32_t>(minutes_scale_);
  writer.put<std::uint64_t>(groups_.size());
  for (const Group& g : groups_) {
    writer.put(g.key.organization);
    writer.put(g.key.period);
    writer.put<std::uint8_t>(g.key.dimension != 0);
    writer.put(g.key.dimension != 0 ? dimensions_[g.key.dimension - 1] : UuidBytes{});
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
  return out;
}

RoiTally RoiTally::deserialize(const unsigned char* data, std::size_t size) {
  Reader reader(data, size);
  if (reader.get<std::uint32_t>() != kTallyMagic) throw std::invalid_argument("ROI tally: not a tally");
  RoiTally tally(reader.get<std::int32_t>());
  const auto groups = reader.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < groups; ++i) {
    const auto organization = reader.get<std::uint32_t>();
    const auto period = reader.get<std::uint32_t>();
    const bool has_dimension = reader.get<std::uint8_t>() != 0;
    const auto dimension = reader.get<UuidBytes>();
    Group& g = tally.group(organization, period, has_dimension ? std::optional<UuidBytes>(dimension) : std::nullopt);
    g.completed = reader.get<std::int64_t>();
    g.failed = reader.get<std::int64_t>();
    g.cost_micros = reader.get<std::int64_t>();
    g.tokens = reader.get<std::int64_t>();
    g.execution_sum = reader.get<std::int64_t>();
    g.ai_ms = reader.get<std::int64_t>();
    g.default_minute_tasks = reader.get<std::int64_t>();
    g.prompt_minutes = reader.get<Int128>();
    g.execution_ms = reader.get_all<std::int32_t>();
    g.users = reader.get_all<UuidBytes>();
  }
  if (!reader.done()) throw std::invalid_argument("ROI tally: trailing bytes");
  return tally;
}

std::vector<RoiFigures> RoiTally::finish() {
  std::vector<RoiFigures> figures;
  figures.reserve(groups_.size());
  for (Group& g : groups_) {
    RoiFigures f;
    f.organization = g.key.organization;
    f.period = g.key.period;
    f.has_dimension = g.key.dimension != 0;
    if (f.has_dimension) f.dimension = dimensions_[g.key.dimension - 1];
    f.tasks_completed = g.completed;
    f.tasks_failed = g.failed;
    f.cost_micros = g.cost_micros;
    f.total_tokens = g.tokens;
    if (!g.execution_ms.empty()) {
      const std::size_t n = g.execution_ms.size();
      f.avg_execution_ms = rounded_mean(g.execution_sum, static_cast<std::int64_t>(n));
      f.p95_execution_ms =
          static_cast<std::int32_t>(round_half_away_from_zero(percentile_cont(g.execution_ms.data(), n, 0.95)));
      f.p99_execution_ms =
          static_cast<std::int32_t>(round_half_away_from_zero(percentile_cont(g.execution_ms.data(), n, 0.99)));
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

RoiScan::RoiScan(const std::vector<UuidBytes>& organizations, RoiCalendar calendar,
                 const std::vector<UuidBytes>& prompts, const std::vector<std::string>& prompt_minutes)
    : calendar_(std::move(calendar)) {
  if (organizations.size() != calendar_.organizations())
    throw std::invalid_argument("ROI scan: one zone per organization");
  if (prompts.size() != prompt_minutes.size()) throw std::invalid_argument("ROI scan: one minutes value per prompt");
  for (const UuidBytes& organization : organizations) organizations_.find_or_add(organization);
  if (organizations_.size() != organizations.size()) throw std::invalid_argument("ROI scan: repeated organization");
  // Every prompt's minutes in the same decimals, so that their sums stay exact integers;
  // minutes written with more than 18 decimals are rounded to 18.
  int scale = 0;
  for (const std::string& minutes : prompt_minutes) scale = std::max(scale, decimal_places(minutes));
  scale = std::min(scale, kMaxMinutesScale);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto minutes = parse_scaled_decimal(prompt_minutes[i], scale);
    if (!minutes) throw std::invalid_argument("ROI scan: manual minutes that are not a non-negative number");
    if (prompts_.find_or_add(prompts[i]) == prompt_minutes_.size()) prompt_minutes_.push_back(*minutes);
  }
  tally_ = RoiTally(scale);
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
