// The ROI figures of a roll-up, finished natively from the scan's group tallies (API.md "ROI";
// the formulas are written out at the top of src/sql/55_roi.sql). They used to be SQL numeric
// expressions evaluated per group (90,000 groups for 1,000 organizations over 90 days), which
// cost more than the scan's per-task work; here they are exact integer arithmetic that gives
// the very values PostgreSQL's numeric gives for the same expressions: a division is carried
// to the scale numeric's division picks (select_div_scale: at least 16 significant digits, no
// fewer decimals than either operand), rounded half away from zero there, then rounded again
// by round(x, n) — so a double rounding numeric would make is made here too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "core/decimal.hpp"
#include "core/roi_tally.hpp"

namespace celaest::core {

// A decimal as numeric holds it: units / 10^scale, scale being numeric's display scale (the
// decimals it prints; it decides the scale of a division and is kept by every operation).
struct NumericValue {
  Int128 units = 0;
  int scale = 0;
};

// numeric's operators on such values. Every one throws std::overflow_error when a result or an
// intermediate step does not fit in 128 bits (amounts far beyond any ROI figure; the caller
// reports it as out of range).
NumericValue numeric_add(NumericValue a, NumericValue b);
NumericValue numeric_sub(NumericValue a, NumericValue b);
NumericValue numeric_mul(NumericValue a, NumericValue b);
// a / b as numeric's `/` computes it (b must not be zero: std::domain_error).
NumericValue numeric_div(NumericValue a, NumericValue b);
// round(a, digits), digits >= 0: half away from zero; the result's scale is `digits`.
NumericValue numeric_round(NumericValue a, int digits);

// One row of the roll-up, every figure finished (the columns of celaest._roi_row).
struct RoiRow : RoiGroupCounts {
  std::optional<NumericValue> success_rate;  // NULL when no task completed or failed
  std::int64_t manual_equivalent_minutes = 0;
  std::int64_t time_saved_minutes = 0;
  NumericValue cost_ai;
  NumericValue cost_manual_equivalent;
  NumericValue money_saved;
  std::int64_t cost_ai_exact_micros = 0;  // scale 6
  std::optional<NumericValue> roi_percent;  // NULL when the exact AI cost is 0
  std::int64_t total_tokens = 0;
  std::optional<std::int32_t> avg_tokens_per_task;
  std::optional<std::int32_t> avg_execution_ms;
  std::optional<std::int32_t> p95_execution_ms;
  std::optional<std::int32_t> p99_execution_ms;
  std::int64_t active_users = 0;
  std::int64_t new_users = 0;
};

// What the figures of a run depend on besides the tasks.
struct RoiRates {
  std::vector<NumericValue> hourly_rate;  // per organization of the run
  std::vector<bool> reported;             // per organization: whether its rows are wanted
  NumericValue default_manual_minutes;    // for completed tasks whose prompt names none
  std::size_t periods = 0;
  // 'total' roll-ups: a row for every reported organization and period, zeros where no task
  // counted; else only groups with tasks.
  bool dense = false;
  // New users per organization * periods + period (absent: none).
  std::vector<std::int64_t> new_users;
};

// The rows of a run from its groups' figures (RoiTally::finish) and minutes scale, in
// (organization, period) order for dense runs, the groups' order otherwise.
// Throws std::invalid_argument on figures of an organization or period outside the run,
// std::overflow_error as the numeric operators above.
std::vector<RoiRow> finish_roi_rows(const std::vector<RoiFigures>& groups, int minutes_scale, const RoiRates& rates);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
