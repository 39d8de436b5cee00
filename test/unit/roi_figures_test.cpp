#include "core/roi_figures.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using celaest::core::finish_roi_rows;
using celaest::core::format_scaled;
using celaest::core::NumericValue;
using celaest::core::numeric_add;
using celaest::core::numeric_div;
using celaest::core::numeric_mul;
using celaest::core::numeric_round;
using celaest::core::numeric_sub;
using celaest::core::RoiFigures;
using celaest::core::RoiRates;
using celaest::core::RoiRow;

namespace {

NumericValue value(std::int64_t units, int scale) { return NumericValue{units, scale}; }

// As numeric_out prints it.
std::string text(const NumericValue& v) { return format_scaled(v.units, v.scale); }

}  // namespace

// Every expected text below is what PostgreSQL 15 printed for the same expression (psql,
// SELECT ...), scale included: the division's scale is numeric's, not a chosen precision.
TEST(NumericValue, DivisionTakesNumericsScale) {
  EXPECT_EQ(text(numeric_div(value(1, 0), value(3, 0))), "0.33333333333333333333");        // 1::numeric/3
  EXPECT_EQ(text(numeric_div(numeric_mul(value(1000, 1), value(2, 0)), value(3, 0))),      // 100.0*2/3
            "66.6666666666666667");
  EXPECT_EQ(text(numeric_div(value(12345, 0), value(600000, 1))), "0.20575000000000000000");  // 12345/60000.0
  EXPECT_EQ(text(numeric_div(value(2, 0), value(3000000, 0))), "0.000000666666666666666667");
  EXPECT_EQ(text(numeric_div(value(123456789012, 0), value(7, 0))), "17636684144.57142857");
  EXPECT_EQ(text(numeric_div(value(1, 6), value(7, 0))), "0.000000142857142857142857");     // 0.000001/7
  EXPECT_EQ(text(numeric_div(numeric_mul(value(2550, 2), value(17, 0)), value(60, 0))),     // (25.50*17)/60
            "7.2250000000000000");
  EXPECT_EQ(text(numeric_div(value(0, 0), value(7, 0))), "0.00000000000000000000");         // 0::numeric/7
  EXPECT_EQ(text(numeric_div(value(99999999, 0), value(3, 2))), "3333333300.00000000");     // 99999999/0.03
}

TEST(NumericValue, RoundsHalfAwayFromZero) {
  EXPECT_EQ(text(numeric_round(numeric_div(value(-7, 0), value(2, 0)), 0)), "-4");  // round(-7::numeric/2)
  EXPECT_EQ(text(numeric_round(value(725, 2), 1)), "7.3");
  EXPECT_EQ(text(numeric_round(value(-725, 2), 1)), "-7.3");
  EXPECT_EQ(text(numeric_round(value(7, 0), 2)), "7.00");  // round() sets the scale
  // round((41.67 - 37.123456) * 100 / 37.123456, 2) = 12.25
  EXPECT_EQ(text(numeric_round(numeric_div(numeric_mul(numeric_sub(value(4167, 2), value(37123456, 6)), value(100, 0)),
                                           value(37123456, 6)),
                               2)),
            "12.25");
}

TEST(NumericValue, AddAndSubtractKeepTheLargerScale) {
  EXPECT_EQ(text(numeric_add(value(15, 1), value(25, 2))), "1.75");
  EXPECT_EQ(text(numeric_sub(value(15, 1), value(25, 2))), "1.25");
  EXPECT_EQ(text(numeric_mul(value(15, 1), value(25, 2))), "0.375");
}

TEST(NumericValue, OverflowAndDivisionByZeroThrow) {
  const NumericValue huge{static_cast<celaest::core::Int128>(1) << 120, 0};
  EXPECT_THROW(numeric_mul(huge, huge), std::overflow_error);
  EXPECT_THROW(numeric_div(value(1, 0), value(0, 0)), std::domain_error);
  EXPECT_THROW(numeric_div(value(1, 0), value(1, 999)), std::overflow_error);
}

namespace {

RoiFigures group(std::uint32_t organization, std::uint32_t period) {
  RoiFigures g;
  g.organization = organization;
  g.period = period;
  g.tasks_completed = 2;
  g.tasks_failed = 1;
  g.cost_micros = 37123456;  // 37.123456
  g.total_tokens = 1000;
  g.avg_execution_ms = 500;
  g.p95_execution_ms = 900;
  g.p99_execution_ms = 990;
  g.prompt_minutes = 1125;  // 11.25 at scale 2
  g.default_minute_tasks = 1;
  g.ai_ms = 90000;  // 1.5 minutes
  g.active_users = 2;
  return g;
}

RoiRates rates() {
  RoiRates r;
  r.hourly_rate = {value(2550, 2), value(42, 0)};
  r.reported = {true, true};
  r.default_manual_minutes = value(5, 0);
  r.periods = 2;
  r.dense = true;
  r.new_users = {0, 3, 0, 0};
  return r;
}

}  // namespace

// The formulas of src/sql/55_roi.sql, one by one, on a group checked by hand.
TEST(RoiRows, FiguresFollowTheFormulas) {
  const std::vector<RoiRow> rows = finish_roi_rows({group(0, 1)}, 2, rates());
  ASSERT_EQ(rows.size(), 4u);  // dense: 2 organizations x 2 periods
  const RoiRow& r = rows[1];
  EXPECT_EQ(r.organization, 0u);
  EXPECT_EQ(r.period, 1u);
  EXPECT_EQ(text(*r.success_rate), "66.67");         // round(100.0 * 2 / 3, 2)
  EXPECT_EQ(*r.avg_tokens_per_task, 333);             // round(1000 / 3)
  EXPECT_EQ(r.manual_equivalent_minutes, 16);         // round(11.25 + 1 * 5) = 16
  EXPECT_EQ(r.time_saved_minutes, 15);                // round(16 - 90000 / 60000.0) = round(14.5) = 15
  EXPECT_EQ(text(r.cost_ai), "37.12");                // round(37.123456, 2)
  EXPECT_EQ(text(r.cost_manual_equivalent), "6.80");  // round(16 * 25.50 / 60, 2)
  EXPECT_EQ(text(r.money_saved), "-30.32");
  EXPECT_EQ(text(*r.roi_percent), "-81.68");  // round((6.80 - 37.123456) * 100 / 37.123456, 2)
  EXPECT_EQ(r.new_users, 3);
  EXPECT_EQ(r.active_users, 2);
  EXPECT_EQ(*r.p99_execution_ms, 990);
}

TEST(RoiRows, DenseRunsFillEmptyPeriodsWithZerosAndNulls) {
  const std::vector<RoiRow> rows = finish_roi_rows({group(0, 1)}, 2, rates());
  const RoiRow& empty = rows[2];  // organization 1, period 0
  EXPECT_EQ(empty.organization, 1u);
  EXPECT_EQ(empty.period, 0u);
  EXPECT_EQ(empty.tasks_completed + empty.tasks_failed, 0);
  EXPECT_FALSE(empty.success_rate);
  EXPECT_FALSE(empty.avg_tokens_per_task);
  EXPECT_FALSE(empty.roi_percent);
  EXPECT_FALSE(empty.p95_execution_ms);
  EXPECT_EQ(text(empty.cost_ai), "0.00");
  EXPECT_EQ(text(empty.cost_manual_equivalent), "0.00");
  EXPECT_EQ(empty.time_saved_minutes, 0);
}

TEST(RoiRows, UnreportedOrganizationsAndSparseRuns) {
  RoiRates r = rates();
  r.reported = {false, true};
  EXPECT_EQ(finish_roi_rows({group(0, 1)}, 2, r).size(), 2u);  // organization 1's two periods
  r.dense = false;
  EXPECT_TRUE(finish_roi_rows({group(0, 1)}, 2, r).empty());
  const std::vector<RoiRow> sparse = finish_roi_rows({group(1, 0)}, 2, r);
  ASSERT_EQ(sparse.size(), 1u);
  EXPECT_EQ(text(sparse[0].cost_manual_equivalent), "11.20");  // round(16 * 42 / 60, 2)
}

TEST(RoiRows, RejectsGroupsOutsideTheRun) {
  EXPECT_THROW(finish_roi_rows({group(2, 0)}, 2, rates()), std::invalid_argument);
  EXPECT_THROW(finish_roi_rows({group(0, 2)}, 2, rates()), std::invalid_argument);
}
