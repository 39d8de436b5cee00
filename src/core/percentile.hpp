// Order statistics for the ROI roll-up, computed the way PostgreSQL's percentile_cont does,
// so that a native aggregate (which PostgreSQL can run in parallel workers, unlike the
// ordered-set percentile_cont) gives the very same figures.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/uuid_bytes.hpp"

namespace celaest::core {

// percentile_cont(fraction) over n values (n >= 1; fraction in [0, 1]): the values at sorted
// positions floor(f * (n - 1)) and ceil(f * (n - 1)), interpolated as PostgreSQL does in
// double precision (lo + (hi - lo) * proportion). Reorders the values.
double percentile_cont(std::int32_t* values, std::size_t n, double fraction);
// The same over values already in ascending order (left as they are).
double percentile_cont_sorted(const std::int32_t* values, std::size_t n, double fraction);
// The same in two steps, for sorted values that are not an array of int32 (bytes): the two
// sorted positions percentile_cont reads, then its value from the values found there.
struct PercentilePositions {
  std::size_t first_row;
  std::size_t second_row;
  double position;
};
PercentilePositions percentile_positions(std::size_t n, double fraction);
double percentile_between(std::int32_t first, std::int32_t second, const PercentilePositions& at);

// Rounds half away from zero (1.5 -> 2, 2.5 -> 3), as numeric round() does.
std::int64_t round_half_away_from_zero(double value);

// Sorts the uuids and moves the distinct ones to the front; returns how many there are.
std::size_t sort_unique(UuidBytes* uuids, std::size_t n);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
