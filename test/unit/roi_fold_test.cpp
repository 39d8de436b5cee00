#include "core/roi_fold.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

using celaest::core::RoiCalendar;
using celaest::core::RoiFigures;
using celaest::core::RoiFold;
using celaest::core::RoiScan;
using celaest::core::RoiTally;
using celaest::core::RoiTaskRow;
using celaest::core::UuidBytes;

namespace {
constexpr std::int64_t kDay = 86400LL * 1000000LL;

UuidBytes org(unsigned char n) {
  UuidBytes bytes{};
  bytes[0] = n;
  return bytes;
}

// Two UTC organizations over four days, each day its own period.
RoiScan scan_by_day() { return RoiScan({org(1), org(2)}, RoiCalendar({0, 0}, {0, kDay, 2 * kDay, 3 * kDay, 4 * kDay}, {0, 1, 2, 3}), {}, {}); }

RoiTaskRow task(unsigned char organization, std::int64_t day, std::int32_t ms) {
  RoiTaskRow row;
  row.organization = org(organization);
  row.created_at = day * kDay + kDay / 2;
  row.completed = true;
  row.cost_micros = 10;
  row.tokens = 1;
  row.execution_ms = ms;
  row.user = org(100);
  return row;
}

// The run: days 0-1 are period 0, days 2-3 period 1.
RoiFold fold(std::vector<celaest::core::RoiStaleNote> notes = {}) {
  return RoiFold({org(1), org(2)}, {"UTC", "UTC"}, {0, 0, 1, 1}, 2, std::move(notes));
}

std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures> finished(RoiFold& run, int* scale = nullptr) {
  int minutes_scale = 0;
  std::map<std::pair<std::uint32_t, std::uint32_t>, RoiFigures> out;
  for (const RoiFigures& f : run.finish(&minutes_scale)) out[{f.organization, f.period}] = f;
  if (scale != nullptr) *scale = minutes_scale;
  return out;
}
}  // namespace

TEST(RoiFold, MergesStoredDaysThenReadsTheMissingOnesFromTheTasks) {
  RoiScan stored = scan_by_day();
  for (int day = 0; day < 4; ++day) stored.add(task(1, day, 100 + day));  // one task a day
  // Days 0-2 of organization 1 are touched by a note: their stored copies are not used.
  RoiFold run = fold({{0u, std::int64_t{0}, std::int64_t{2}}});
  int counted = 0;
  for (const auto& state : stored.tally().group_states())
    counted += run.add_stored(org(1), "UTC", state.period, state.bytes.data(), state.bytes.size());
  // A stored day without tasks (organization 2, day 3): present, nothing counted.
  EXPECT_TRUE(run.add_stored(org(2), "UTC", 3, nullptr, 0));
  EXPECT_EQ(counted, 1);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> missing;
  for (const auto& pair : run.missing()) missing.emplace_back(pair.organization, pair.day);
  const std::vector<std::pair<std::uint32_t, std::uint32_t>> expected{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}};
  EXPECT_EQ(missing, expected);

  // Between the steps, as bytes.
  const auto bytes = run.serialize();
  RoiFold again = RoiFold::deserialize(bytes.data(), bytes.size());
  EXPECT_THROW(RoiFold::deserialize(bytes.data(), bytes.size() - 3), std::invalid_argument);

  RoiScan fresh = scan_by_day();
  fresh.add(task(1, 1, 7));  // day 1 read again: now two tasks
  fresh.add(task(1, 1, 8));
  fresh.add(task(1, 0, 100));
  fresh.add(task(1, 2, 102));
  fresh.add(task(1, 3, 9));  // day 3 of organization 1 was stored and counted: left out
  const auto fresh_bytes = fresh.tally().serialize();
  again.add_fresh(fresh_bytes.data(), fresh_bytes.size());
  const auto figures = finished(again);
  EXPECT_EQ(figures.at({0, 0}).tasks_completed, 3);  // day 0 + day 1 (two)
  EXPECT_EQ(figures.at({0, 1}).tasks_completed, 2);  // day 2 fresh + day 3 stored
  EXPECT_EQ(figures.count({1, 1}), 0u);              // organization 2: no task anywhere
}

TEST(RoiFold, IgnoresDaysOfAnotherZoneOrganizationOrOutsideTheRun) {
  RoiScan stored = scan_by_day();
  stored.add(task(1, 0, 100));
  const auto state = stored.tally().group_states().at(0);
  RoiFold run = fold();
  EXPECT_FALSE(run.add_stored(org(1), "Asia/Tokyo", 0, state.bytes.data(), state.bytes.size()));
  EXPECT_FALSE(run.add_stored(org(9), "UTC", 0, state.bytes.data(), state.bytes.size()));
  EXPECT_FALSE(run.add_stored(org(1), "UTC", -1, state.bytes.data(), state.bytes.size()));
  EXPECT_FALSE(run.add_stored(org(1), "UTC", 4, state.bytes.data(), state.bytes.size()));
  EXPECT_TRUE(run.add_stored(org(2), "UTC", 3, state.bytes.data(), state.bytes.size()));
  EXPECT_FALSE(run.add_stored(org(2), "UTC", 3, state.bytes.data(), state.bytes.size()));  // counted once
  EXPECT_EQ(finished(run).at({1, 1}).tasks_completed, 1);
  // (A malformed state ends the run: the ERROR aborts aggregate_roi's statement.)
  EXPECT_THROW(run.add_stored(org(2), "UTC", 2, state.bytes.data(), state.bytes.size() - 2), std::invalid_argument);
}

TEST(RoiFold, RefusesInconsistentRuns) {
  EXPECT_THROW(RoiFold({org(1)}, {"UTC", "UTC"}, {0}, 1, {}), std::invalid_argument);
  EXPECT_THROW(RoiFold({org(1), org(1)}, {"UTC", "UTC"}, {0}, 1, {}), std::invalid_argument);
  EXPECT_THROW(RoiFold({org(1)}, {"UTC"}, {0, 1}, 1, {}), std::invalid_argument);
  EXPECT_THROW(RoiFold({org(1)}, {"UTC"}, {0}, 1, {{1u, std::nullopt, std::nullopt}}), std::invalid_argument);
  EXPECT_THROW(RoiFold({org(1)}, {"UTC"}, {0}, 1, {{0u, 2, 1}}), std::invalid_argument);
  EXPECT_THROW(RoiFold({org(1)}, {"UTC"}, {0}, 1, {{0u, 2, std::nullopt}}), std::invalid_argument);
}

// Periods of one day are finished from each state at once; the figures equal those of the day
// tallied from its tasks, minutes brought to the largest scale of the days.
TEST(RoiFold, FinishesOneDayPeriodsStraightFromTheirStates) {
  RoiScan whole_minutes({org(1), org(2)}, RoiCalendar({0, 0}, {0, kDay, 2 * kDay, 3 * kDay, 4 * kDay}, {0, 1, 2, 3}),
                        {org(50)}, {"12"});
  RoiScan tenths({org(1), org(2)}, RoiCalendar({0, 0}, {0, kDay, 2 * kDay, 3 * kDay, 4 * kDay}, {0, 1, 2, 3}),
                 {org(50), org(51)}, {"12", "7.5"});
  for (int i = 0; i < 400; ++i) {
    RoiTaskRow row = task(static_cast<unsigned char>(1 + i % 2), (i / 2) % 4, (i * 7919) % 30000);
    row.user = org(static_cast<unsigned char>(100 + i % 13));
    row.completed = i % 5 != 0;
    row.failed = !row.completed;
    row.prompt = i % 3 == 0 ? org(50) : org(51);
    ((i / 2) % 4 < 2 ? whole_minutes : tenths).add(row);  // days 0-1 stored at scale 0, days 2-3 at 1
  }
  RoiFold run({org(1), org(2)}, {"UTC", "UTC"}, {0, 1, 2, 3}, 4, {});
  for (RoiScan* scan : {&whole_minutes, &tenths})
    for (const auto& state : scan->tally().group_states())
      EXPECT_TRUE(run.add_stored(state.organization == 0 ? org(1) : org(2), "UTC", state.period,
                                 state.bytes.data(), state.bytes.size()));
  int scale = -1;
  const auto got = finished(run, &scale);
  EXPECT_EQ(scale, 1);
  ASSERT_EQ(got.size(), 8u);
  for (RoiScan* scan : {&whole_minutes, &tenths}) {
    const int factor = scan == &whole_minutes ? 10 : 1;
    for (const RoiFigures& e : scan->tally().finish()) {
      const RoiFigures& g = got.at({e.organization, e.period});
      EXPECT_EQ(g.tasks_completed, e.tasks_completed);
      EXPECT_EQ(g.tasks_failed, e.tasks_failed);
      EXPECT_EQ(g.cost_micros, e.cost_micros);
      EXPECT_EQ(g.avg_execution_ms, e.avg_execution_ms);
      EXPECT_EQ(g.p95_execution_ms, e.p95_execution_ms);
      EXPECT_EQ(g.p99_execution_ms, e.p99_execution_ms);
      EXPECT_EQ(g.active_users, e.active_users);
      EXPECT_EQ(g.default_minute_tasks, e.default_minute_tasks);
      EXPECT_EQ(g.prompt_minutes, e.prompt_minutes * factor);
    }
  }
}

TEST(RoiFold, NotesTouchTheirDaysForTheirOrganizationOrAll) {
  RoiScan stored = scan_by_day();
  for (int day = 0; day < 4; ++day) {
    stored.add(task(1, day, 100));
    stored.add(task(2, day, 100));
  }
  const auto states = stored.tally().group_states();
  const auto counted = [&](std::vector<celaest::core::RoiStaleNote> notes) {
    RoiFold run = fold(std::move(notes));
    std::vector<int> out;
    for (const auto& state : states)
      if (run.add_stored(state.organization == 0 ? org(1) : org(2), "UTC", state.period, state.bytes.data(),
                         state.bytes.size()))
        out.push_back(static_cast<int>(state.organization * 10 + state.period));
    std::sort(out.begin(), out.end());
    return out;
  };
  using Note = celaest::core::RoiStaleNote;
  const std::optional<std::int64_t> all;
  EXPECT_EQ(counted({}), (std::vector<int>{0, 1, 2, 3, 10, 11, 12, 13}));
  EXPECT_EQ(counted({Note{std::nullopt, 2, 3}}), (std::vector<int>{0, 1, 10, 11}));  // every organization
  EXPECT_EQ(counted({Note{1u, all, all}}), (std::vector<int>{0, 1, 2, 3}));          // organization 2, whole
  EXPECT_EQ(counted({Note{std::nullopt, all, all}}), (std::vector<int>{}));          // everything
  EXPECT_EQ(counted({Note{0u, -3, -1}, Note{1u, 4, 6}}),                             // just outside
            (std::vector<int>{0, 1, 2, 3, 10, 11, 12, 13}));
  // Overlapping spans: a long one hidden behind a later-starting short one still counts.
  EXPECT_EQ(counted({Note{0u, 0, 3}, Note{0u, 1, 1}}), (std::vector<int>{10, 11, 12, 13}));
  EXPECT_EQ(counted({Note{0u, 0, 0}, Note{0u, 2, 2}}), (std::vector<int>{1, 3, 10, 11, 12, 13}));
}
