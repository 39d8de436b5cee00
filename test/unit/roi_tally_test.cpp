#include "core/roi_tally.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "core/percentile.hpp"

using celaest::core::decode_figures;
using celaest::core::encode_figures;
using celaest::core::RoiCalendar;
using celaest::core::RoiFigures;
using celaest::core::RoiScan;
using celaest::core::RoiTally;
using celaest::core::RoiTaskRow;
using celaest::core::UuidBytes;

namespace {
constexpr std::int64_t kHour = 3600LL * 1000000LL;
constexpr std::int64_t kDay = 24 * kHour;

UuidBytes uuid(unsigned char n) {
  UuidBytes bytes{};
  bytes[0] = n;
  bytes[15] = static_cast<unsigned char>(n * 7);
  return bytes;
}

// Two zones over three local days: zone 0 is UTC, zone 1 is UTC+5:30 whose second day is 23
// hours long (as a DST day would be). Days 0 and 1 form period 0, day 2 is period 1.
RoiCalendar calendar() {
  const std::int64_t offset = -(5 * kHour + kHour / 2);
  return RoiCalendar({0, 1}, {0, kDay, 2 * kDay, 3 * kDay, offset, offset + kDay, offset + 2 * kDay - kHour,
                              offset + 3 * kDay - kHour},
                     {0, 0, 1});
}

RoiScan scan() { return RoiScan({uuid(1), uuid(2)}, calendar(), {uuid(50), uuid(51)}, {"12", "7.5"}); }

RoiTaskRow task(unsigned char org, std::int64_t at, bool completed, std::int32_t ms, unsigned char user) {
  RoiTaskRow row;
  row.organization = uuid(org);
  row.created_at = at;
  row.completed = completed;
  row.failed = !completed;
  row.cost_micros = 1500;
  row.tokens = 10;
  row.execution_ms = ms;
  row.ai_ms = ms / 2;
  row.user = uuid(user);
  return row;
}

std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures> by_group(std::vector<RoiFigures> figures) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures> out;
  for (const auto& f : figures) out[{f.organization, f.period}] = f;
  return out;
}
// Every figure of every group equal.
void expect_same_figures(const std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures>& expected,
                         const std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures>& got) {
  ASSERT_EQ(expected.size(), got.size());
  for (const auto& [key, e] : expected) {
    const RoiFigures& g = got.at(key);
    EXPECT_EQ(g.tasks_completed, e.tasks_completed);
    EXPECT_EQ(g.tasks_failed, e.tasks_failed);
    EXPECT_EQ(g.cost_micros, e.cost_micros);
    EXPECT_EQ(g.total_tokens, e.total_tokens);
    EXPECT_EQ(g.ai_ms, e.ai_ms);
    EXPECT_EQ(g.default_minute_tasks, e.default_minute_tasks);
    EXPECT_EQ(g.avg_execution_ms, e.avg_execution_ms);
    EXPECT_EQ(g.p95_execution_ms, e.p95_execution_ms);
    EXPECT_EQ(g.p99_execution_ms, e.p99_execution_ms);
    EXPECT_EQ(g.prompt_minutes, e.prompt_minutes);
    EXPECT_EQ(g.active_users, e.active_users);
  }
}

}  // namespace

TEST(RoiCalendar, PlacesInstantsInTheLocalDayOfTheirZone) {
  const RoiCalendar c = calendar();
  EXPECT_EQ(c.period_of(0, 0), 0);
  EXPECT_EQ(c.period_of(0, 2 * kDay - 1), 0);
  EXPECT_EQ(c.period_of(0, 2 * kDay), 1);  // exactly local midnight opens the new day
  EXPECT_EQ(c.period_of(0, -1), -1);
  EXPECT_EQ(c.period_of(0, 3 * kDay), -1);
  const std::int64_t offset = -(5 * kHour + kHour / 2);
  EXPECT_EQ(c.period_of(1, offset - 1), -1);
  EXPECT_EQ(c.period_of(1, offset), 0);
  EXPECT_EQ(c.period_of(1, offset + 2 * kDay - kHour - 1), 0);  // the short day's last instant
  EXPECT_EQ(c.period_of(1, offset + 2 * kDay - kHour), 1);
  EXPECT_EQ(c.period_of(1, offset + 3 * kDay - kHour - 1), 1);
  EXPECT_EQ(c.period_of(1, offset + 3 * kDay - kHour), -1);
}

TEST(RoiCalendar, RefusesInconsistentInput) {
  EXPECT_THROW(RoiCalendar({0}, {0, kDay, 2 * kDay}, {0}), std::invalid_argument);  // 3 starts for 1 day
  EXPECT_THROW(RoiCalendar({1}, {0, kDay}, {0}), std::invalid_argument);            // no zone 1
  EXPECT_THROW(RoiCalendar({0}, {kDay, 0}, {0}), std::invalid_argument);            // decreasing
}

TEST(RoiScan, CountsEachTaskInItsGroupByTheRules) {
  RoiScan s = scan();
  std::vector<std::int32_t> times;
  for (int i = 0; i < 40; ++i) {
    RoiTaskRow row = task(1, i * kHour, i % 4 != 0, 100 + (i * 37) % 500, static_cast<unsigned char>(i % 3));
    if (i % 5 == 0) row.prompt = uuid(50);       // 12 minutes
    else if (i % 5 == 1) row.prompt = uuid(51);  // 7.5 minutes
    else if (i % 5 == 2) row.prompt = uuid(99);  // a prompt without minutes
    if (i == 7) row.execution_ms.reset();
    s.add(row);
    if (i < 48 && row.completed && row.execution_ms) times.push_back(*row.execution_ms);
  }
  RoiTaskRow pending = task(1, kHour, false, 5, 9);
  pending.failed = false;
  s.add(pending);
  s.add(task(3, kHour, true, 1, 1));           // an organization not in the run
  s.add(task(1, 3 * kDay, true, 1, 1));        // after the last period
  const auto figures = by_group(s.tally().finish());
  ASSERT_EQ(figures.size(), 1u);
  const RoiFigures& f = figures.at({0, 0});
  EXPECT_EQ(f.tasks_completed, 30);
  EXPECT_EQ(f.tasks_failed, 10);
  EXPECT_EQ(f.cost_micros, 41 * 1500);
  EXPECT_EQ(f.total_tokens, 410);
  EXPECT_EQ(f.active_users, 4);  // users 0, 1, 2 and the pending task's 9
  // Completed: i % 4 != 0. Prompt 12 min: i % 5 == 0 and completed; 7.5: i % 5 == 1.
  std::int64_t twelve = 0, seven_and_half = 0, other = 0;
  for (int i = 0; i < 40; ++i) {
    if (i % 4 == 0) continue;
    if (i % 5 == 0) ++twelve;
    else if (i % 5 == 1) ++seven_and_half;
    else ++other;
  }
  EXPECT_EQ(f.prompt_minutes, twelve * 120 + seven_and_half * 75);  // scale 1
  EXPECT_EQ(f.default_minute_tasks, other);
  std::int64_t sum = 0;
  for (auto t : times) sum += t;
  EXPECT_EQ(f.avg_execution_ms, static_cast<std::int32_t>((2 * sum + static_cast<std::int64_t>(times.size())) /
                                                         (2 * static_cast<std::int64_t>(times.size()))));
  auto copy = times;
  EXPECT_EQ(f.p95_execution_ms,
            celaest::core::round_half_away_from_zero(celaest::core::percentile_cont(copy.data(), copy.size(), 0.95)));
  copy = times;
  EXPECT_EQ(f.p99_execution_ms,
            celaest::core::round_half_away_from_zero(celaest::core::percentile_cont(copy.data(), copy.size(), 0.99)));
}

TEST(RoiScan, GroupsWithoutCompletedTimesHaveNoPercentiles) {
  RoiScan s = scan();
  s.add(task(2, 0, false, 10, 1));  // zone 1: local day 0 starts 5:30 before UTC midnight
  const auto figures = by_group(s.tally().finish());
  const RoiFigures& f = figures.at({1, 0});
  EXPECT_EQ(f.tasks_failed, 1);
  EXPECT_FALSE(f.avg_execution_ms.has_value());
  EXPECT_FALSE(f.p95_execution_ms.has_value());
  EXPECT_EQ(f.ai_ms, 0);
}

TEST(RoiScan, SplitsByDimensionWhenAsked) {
  RoiScan s = scan();
  RoiTaskRow a = task(1, 0, true, 10, 1);
  a.dimension = uuid(70);
  RoiTaskRow b = task(1, 0, true, 20, 1);  // no model: its own group
  RoiTaskRow c = a;
  c.dimension = uuid(71);
  // The group without a model comes first: groups found by position and by hash mix.
  s.add(b);
  s.add(a);
  s.add(a);
  s.add(c);
  s.add(c);
  s.add(c);
  const auto figures = s.tally().finish();
  ASSERT_EQ(figures.size(), 3u);
  for (const auto& f : figures) {
    if (!f.has_dimension) EXPECT_EQ(f.tasks_completed, 1);
    else if (f.dimension == uuid(70)) EXPECT_EQ(f.tasks_completed, 2);
    else EXPECT_EQ(f.tasks_completed, 3);
  }
}

TEST(RoiTally, PartsMergedThroughBytesEqualOneTally) {
  RoiScan whole = scan();
  RoiScan first = scan();
  RoiScan second = scan();
  for (int i = 0; i < 2000; ++i) {
    RoiTaskRow row = task(static_cast<unsigned char>(1 + i % 2), (i * 97) % (3 * kDay), i % 3 != 0,
                          (i * 7919) % 20000, static_cast<unsigned char>(i % 41));
    if (i % 11 == 0) row.prompt = uuid(51);
    whole.add(row);
    (i % 2 == 0 ? first : second).add(row);
  }
  const auto bytes_first = first.tally().serialize();
  const auto bytes_second = second.tally().serialize();
  RoiTally merged;
  merged.merge(RoiTally::deserialize(bytes_first.data(), bytes_first.size()));
  merged.merge(RoiTally::deserialize(bytes_second.data(), bytes_second.size()));
  auto expected = by_group(whole.tally().finish());
  expect_same_figures(expected, by_group(merged.finish()));
  EXPECT_EQ(merged.minutes_scale(), 1);
  EXPECT_THROW(RoiTally::deserialize(bytes_first.data(), bytes_first.size() - 1), std::invalid_argument);

  // The leader's way: each part merged straight from its bytes, the second into a tally
  // that already holds the first part's groups.
  RoiTally from_bytes;
  from_bytes.merge_serialized(bytes_first.data(), bytes_first.size());
  from_bytes.merge_serialized(bytes_second.data(), bytes_second.size());
  expect_same_figures(expected, by_group(from_bytes.finish()));
  EXPECT_THROW(from_bytes.merge_serialized(bytes_second.data(), bytes_second.size() - 1), std::invalid_argument);
}

TEST(RoiFiguresBytes, RoundTrip) {
  RoiScan s = scan();
  s.add(task(1, 0, true, 10, 1));
  const auto figures = s.tally().finish();
  const auto bytes = encode_figures(figures, 3);
  int scale = 0;
  const auto back = decode_figures(bytes.data(), bytes.size(), &scale);
  EXPECT_EQ(scale, 3);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].tasks_completed, 1);
  EXPECT_THROW(decode_figures(bytes.data(), 3, &scale), std::invalid_argument);
}

TEST(RoiScan, RefusesMinutesThatAreNotNumbers) {
  EXPECT_THROW(RoiScan({uuid(1), uuid(2)}, calendar(), {uuid(50)}, {"ten"}), std::invalid_argument);
  EXPECT_THROW(RoiScan({uuid(1)}, calendar(), {}, {}), std::invalid_argument);  // two zones listed, one org
}

// What aggregate_roi does with stored days: a scan by local day, each day's group kept as a
// state, the states merged later into the periods. Equal to a scan by period.
TEST(RoiTally, DayStatesMergedIntoPeriodsEqualAScanByPeriod) {
  const std::int64_t offset = -(5 * kHour + kHour / 2);
  const std::vector<std::int64_t> starts{0,      kDay,          2 * kDay,           3 * kDay,
                                         offset, offset + kDay, offset + 2 * kDay - kHour, offset + 3 * kDay - kHour};
  RoiScan by_period = scan();  // days 0 and 1 are period 0, day 2 is period 1
  RoiScan by_day({uuid(1), uuid(2)}, RoiCalendar({0, 1}, starts, {0, 1, 2}), {uuid(50), uuid(51)}, {"12", "7.5"});
  for (int i = 0; i < 3000; ++i) {
    RoiTaskRow row = task(static_cast<unsigned char>(1 + i % 2), (i * 131 * kHour / 10) % (3 * kDay), i % 4 != 0,
                          (i * 7919) % 30000, static_cast<unsigned char>(i % 53));
    if (i % 5 == 0) row.prompt = uuid(50);
    if (i % 7 == 0) row.prompt = uuid(51);
    by_period.add(row);
    by_day.add(row);
  }
  const auto states = by_day.tally().group_states();
  EXPECT_EQ(states.size(), 6u);  // two organizations, three days
  RoiTally folded;
  folded.index_densely(2, 2);
  const std::uint32_t period_of_day[] = {0, 0, 1};
  for (const auto& state : states)
    folded.merge_group_state(state.organization, period_of_day[state.period], state.bytes.data(), state.bytes.size());
  const auto expected = by_group(by_period.tally().finish());
  expect_same_figures(expected, by_group(folded.finish()));
  EXPECT_EQ(folded.minutes_scale(), 1);
  // Each day its own period: the states' sorted values give the percentiles directly.
  RoiTally per_day;
  for (const auto& state : states)
    per_day.merge_group_state(state.organization, state.period, state.bytes.data(), state.bytes.size());
  expect_same_figures(by_group(by_day.tally().finish()), by_group(per_day.finish()));
  const auto& bytes = states.front().bytes;
  EXPECT_THROW(folded.merge_group_state(0, 0, bytes.data(), bytes.size() - 1), std::invalid_argument);
  EXPECT_THROW(folded.merge_group_state(0, 0, bytes.data() + 1, bytes.size() - 1), std::invalid_argument);
}

// A day stored while the prompts' minutes had no decimals merges with one stored after a
// prompt got "7.5": both are counted in tenths.
TEST(RoiTally, DayStatesOfDifferentMinutesScalesMergeAtTheLargerScale) {
  RoiScan whole_minutes({uuid(1), uuid(2)}, calendar(), {uuid(50)}, {"12"});
  RoiScan tenths({uuid(1), uuid(2)}, calendar(), {uuid(50), uuid(51)}, {"12", "7.5"});
  RoiTaskRow first = task(1, 0, true, 10, 1);
  first.prompt = uuid(50);
  whole_minutes.add(first);
  RoiTaskRow second = task(1, kDay / 2, true, 20, 2);
  second.prompt = uuid(51);
  tenths.add(second);
  const auto a = whole_minutes.tally().group_states();
  const auto b = tenths.tally().group_states();
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  for (const bool scale_first : {true, false}) {
    RoiTally folded;
    const auto& one = scale_first ? a[0] : b[0];
    const auto& other = scale_first ? b[0] : a[0];
    folded.merge_group_state(0, 0, one.bytes.data(), one.bytes.size());
    folded.merge_group_state(0, 0, other.bytes.data(), other.bytes.size());
    const auto figures = folded.finish();
    ASSERT_EQ(figures.size(), 1u);
    EXPECT_EQ(folded.minutes_scale(), 1);
    EXPECT_EQ(figures[0].prompt_minutes, 195);  // 12.0 + 7.5 in tenths
    EXPECT_EQ(figures[0].tasks_completed, 2);
    EXPECT_EQ(figures[0].active_users, 2);
  }
}
