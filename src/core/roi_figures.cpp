#include "core/roi_figures.hpp"

#include <algorithm>
#include <limits>

namespace celaest::core {

namespace {

// numeric.c's constants: division keeps at least 16 significant digits, in base-10000 digits
// of 4 decimals each, with a display scale within [0, 1000].
constexpr int kMinSignificantDigits = 16;
constexpr int kDecimalsPerDigit = 4;
constexpr int kMaxDisplayScale = 1000;

[[noreturn]] void overflow() { throw std::overflow_error("ROI figures: beyond 128-bit exact arithmetic"); }

Int128 checked_mul(Int128 a, Int128 b) {
  Int128 out;
  if (__builtin_mul_overflow(a, b, &out)) overflow();
  return out;
}

Int128 checked_add(Int128 a, Int128 b) {
  Int128 out;
  if (__builtin_add_overflow(a, b, &out)) overflow();
  return out;
}

// The value's units at a larger scale.
Int128 rescaled(NumericValue value, int scale) { return checked_mul(value.units, power_of_ten(scale - value.scale)); }

Int128 magnitude(Int128 value) { return value < 0 ? -value : value; }

// numerator / denominator rounded half away from zero (denominator != 0).
Int128 divide_rounded(Int128 numerator, Int128 denominator) {
  Int128 quotient = numerator / denominator;
  const Int128 remainder = numerator % denominator;
  if (remainder != 0 && magnitude(remainder) >= magnitude(denominator) - magnitude(remainder))
    quotient += (numerator < 0) != (denominator < 0) ? -1 : 1;
  return quotient;
}

// The base-10000 weight of a value's first non-zero digit and that digit, as numeric.c's
// select_div_scale reads them (0 and 0 for zero).
struct LeadingDigit {
  int weight = 0;
  Int128 digit = 0;
};

LeadingDigit leading_digit(NumericValue value) {
  Int128 units = magnitude(value.units);
  if (units == 0) return {};
  int decimal_digits = 1;
  while (decimal_digits < 39 && units >= power_of_ten(decimal_digits)) ++decimal_digits;
  // The value lies in [10^exponent, 10^(exponent + 1)).
  const int exponent = decimal_digits - 1 - value.scale;
  const int weight = exponent >= 0 ? exponent / kDecimalsPerDigit : -((-exponent + kDecimalsPerDigit - 1) / kDecimalsPerDigit);
  // The digit: floor(value / 10000^weight) = floor(units / 10^(scale + 4 weight)).
  const int shift = value.scale + kDecimalsPerDigit * weight;
  const Int128 digit = shift >= 0 ? units / power_of_ten(shift) : units * power_of_ten(-shift);
  return {weight, digit};
}

int division_scale(NumericValue a, NumericValue b) {
  const LeadingDigit first = leading_digit(a);
  const LeadingDigit second = leading_digit(b);
  int quotient_weight = first.weight - second.weight;
  if (first.digit <= second.digit) --quotient_weight;
  int scale = kMinSignificantDigits - quotient_weight * kDecimalsPerDigit;
  scale = std::max({scale, a.scale, b.scale, 0});
  return std::min(scale, kMaxDisplayScale);
}

NumericValue scaled(std::int64_t units, int scale) { return NumericValue{units, scale}; }

std::int64_t to_int64(NumericValue integral) {
  if (integral.units < std::numeric_limits<std::int64_t>::min() ||
      integral.units > std::numeric_limits<std::int64_t>::max())
    overflow();
  return static_cast<std::int64_t>(integral.units);
}

std::int32_t to_int32(NumericValue integral) {
  if (integral.units < std::numeric_limits<std::int32_t>::min() ||
      integral.units > std::numeric_limits<std::int32_t>::max())
    overflow();
  return static_cast<std::int32_t>(integral.units);
}

}  // namespace

NumericValue numeric_add(NumericValue a, NumericValue b) {
  const int scale = std::max(a.scale, b.scale);
  return {checked_add(rescaled(a, scale), rescaled(b, scale)), scale};
}

NumericValue numeric_sub(NumericValue a, NumericValue b) {
  const int scale = std::max(a.scale, b.scale);
  return {checked_add(rescaled(a, scale), -rescaled(b, scale)), scale};
}

NumericValue numeric_mul(NumericValue a, NumericValue b) {
  return {checked_mul(a.units, b.units), a.scale + b.scale};
}

NumericValue numeric_div(NumericValue a, NumericValue b) {
  if (b.units == 0) throw std::domain_error("ROI figures: division by zero");
  const int scale = division_scale(a, b);
  // a / b * 10^scale = a.units * 10^(scale + b.scale - a.scale) / b.units.
  const int shift = scale + b.scale - a.scale;
  const Int128 numerator = shift >= 0 ? checked_mul(a.units, power_of_ten(shift)) : a.units;
  const Int128 denominator = shift >= 0 ? b.units : checked_mul(b.units, power_of_ten(-shift));
  return {divide_rounded(numerator, denominator), scale};
}

NumericValue numeric_round(NumericValue a, int digits) {
  if (a.scale <= digits) return {rescaled(a, digits), digits};
  return {divide_rounded(a.units, power_of_ten(a.scale - digits)), digits};
}

std::vector<RoiRow> finish_roi_rows(const std::vector<RoiFigures>& groups, int minutes_scale, const RoiRates& rates) {
  const std::size_t organizations = rates.hourly_rate.size();
  if (rates.reported.size() != organizations) throw std::invalid_argument("ROI figures: one flag per organization");
  if (!rates.new_users.empty() && rates.new_users.size() != organizations * rates.periods)
    throw std::invalid_argument("ROI figures: new users per organization and period");
  for (const RoiFigures& g : groups)
    if (g.organization >= organizations || g.period >= rates.periods)
      throw std::invalid_argument("ROI figures: a group of an organization or period not in the run");

  const auto new_users_of = [&](std::uint32_t organization, std::uint32_t period) -> std::int64_t {
    const std::size_t at = std::size_t{organization} * rates.periods + period;
    return at < rates.new_users.size() ? rates.new_users[at] : 0;
  };
  const auto row_of = [&](const RoiFigures& g) {
    RoiRow r;
    static_cast<RoiGroupCounts&>(r) = g;
    const std::int64_t counted = g.tasks_completed + g.tasks_failed;
    if (counted != 0) {
      // round(100.0 * completed / (completed + failed), 2)
      r.success_rate = numeric_round(
          numeric_div(numeric_mul(scaled(1000, 1), scaled(g.tasks_completed, 0)), scaled(counted, 0)), 2);
      // round(total_tokens::numeric / (completed + failed))::integer
      r.avg_tokens_per_task = to_int32(numeric_round(numeric_div(scaled(g.total_tokens, 0), scaled(counted, 0)), 0));
    }
    // round(prompt minutes + default-minute tasks * default minutes)::bigint
    const NumericValue manual = numeric_round(
        numeric_add(NumericValue{g.prompt_minutes, minutes_scale},
                    numeric_mul(scaled(g.default_minute_tasks, 0), rates.default_manual_minutes)),
        0);
    r.manual_equivalent_minutes = to_int64(manual);
    // round(manual - ai_ms / 60000.0)::bigint
    r.time_saved_minutes =
        to_int64(numeric_round(numeric_sub(manual, numeric_div(scaled(g.ai_ms, 0), scaled(600000, 1))), 0));
    const NumericValue cost_exact = scaled(g.cost_micros, 6);
    r.cost_ai_exact_micros = g.cost_micros;
    r.cost_ai = numeric_round(cost_exact, 2);
    // round(manual * hourly_rate / 60, 2)
    r.cost_manual_equivalent =
        numeric_round(numeric_div(numeric_mul(manual, rates.hourly_rate[g.organization]), scaled(60, 0)), 2);
    r.money_saved = numeric_sub(r.cost_manual_equivalent, r.cost_ai);
    // round((cost_manual - cost_ai_exact) * 100 / cost_ai_exact, 2)
    if (g.cost_micros != 0)
      r.roi_percent = numeric_round(
          numeric_div(numeric_mul(numeric_sub(r.cost_manual_equivalent, cost_exact), scaled(100, 0)), cost_exact), 2);
    r.total_tokens = g.total_tokens;
    r.avg_execution_ms = g.avg_execution_ms;
    r.p95_execution_ms = g.p95_execution_ms;
    r.p99_execution_ms = g.p99_execution_ms;
    r.active_users = g.active_users;
    // Model and prompt rows carry their organization's new users as well (as the SQL did).
    r.new_users = new_users_of(g.organization, g.period);
    return r;
  };

  std::vector<RoiRow> rows;
  if (!rates.dense) {
    for (const RoiFigures& g : groups)
      if (rates.reported[g.organization]) rows.push_back(row_of(g));
    return rows;
  }
  // Dense: every reported organization and period, in that order; groups with a dimension
  // have no place in a dense run and are not expected.
  std::vector<std::uint32_t> group_at(organizations * rates.periods, 0);  // group + 1
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (groups[i].has_dimension) throw std::invalid_argument("ROI figures: a model or prompt group in a total run");
    group_at[std::size_t{groups[i].organization} * rates.periods + groups[i].period] = static_cast<std::uint32_t>(i + 1);
  }
  rows.reserve(organizations * rates.periods);
  for (std::uint32_t o = 0; o < organizations; ++o) {
    if (!rates.reported[o]) continue;
    for (std::uint32_t p = 0; p < rates.periods; ++p) {
      const std::uint32_t at = group_at[std::size_t{o} * rates.periods + p];
      if (at != 0) {
        rows.push_back(row_of(groups[at - 1]));
      } else {
        RoiFigures empty;
        empty.organization = o;
        empty.period = p;
        rows.push_back(row_of(empty));
      }
    }
  }
  return rows;
}

}  // namespace celaest::core
