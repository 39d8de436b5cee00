#include "core/percentile.hpp"

#include <algorithm>
#include <cmath>

namespace celaest::core {

namespace {

// The same double arithmetic as PostgreSQL's percentile_cont_final_common and float8_lerp,
// step by step, so that the result is bit-identical.
double interpolate(double first, double second, double position, std::size_t first_row) {
  const double proportion = position - static_cast<double>(first_row);
  return first + (second - first) * proportion;
}

}  // namespace

double percentile_cont(std::int32_t* values, std::size_t n, double fraction) {
  const double position = fraction * static_cast<double>(n - 1);
  const auto first_row = static_cast<std::size_t>(std::floor(position));
  const auto second_row = static_cast<std::size_t>(std::ceil(position));
  std::nth_element(values, values + first_row, values + n);
  const double first = values[first_row];
  if (second_row == first_row) return first;
  // After nth_element every value right of first_row is >= it: the next one in order is
  // the smallest of them.
  const double second = *std::min_element(values + first_row + 1, values + n);
  return interpolate(first, second, position, first_row);
}

PercentilePositions percentile_positions(std::size_t n, double fraction) {
  const double position = fraction * static_cast<double>(n - 1);
  return {static_cast<std::size_t>(std::floor(position)), static_cast<std::size_t>(std::ceil(position)), position};
}

double percentile_between(std::int32_t first, std::int32_t second, const PercentilePositions& at) {
  if (at.second_row == at.first_row) return first;
  return interpolate(first, second, at.position, at.first_row);
}

double percentile_cont_sorted(const std::int32_t* values, std::size_t n, double fraction) {
  const PercentilePositions at = percentile_positions(n, fraction);
  return percentile_between(values[at.first_row], values[at.second_row], at);
}

std::int64_t round_half_away_from_zero(double value) { return static_cast<std::int64_t>(std::round(value)); }

std::size_t sort_unique(UuidBytes* uuids, std::size_t n) {
  std::sort(uuids, uuids + n);
  return static_cast<std::size_t>(std::unique(uuids, uuids + n) - uuids);
}

}  // namespace celaest::core
