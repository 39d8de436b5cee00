#include "core/percentile.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

using celaest::core::percentile_cont;
using celaest::core::round_half_away_from_zero;

namespace {
double pct(std::vector<std::int32_t> values, double fraction) {
  return percentile_cont(values.data(), values.size(), fraction);
}
}  // namespace

TEST(Percentile, OneValueIsEveryPercentile) {
  EXPECT_EQ(pct({42}, 0.95), 42.0);
  EXPECT_EQ(pct({42}, 0.99), 42.0);
}

TEST(Percentile, InterpolatesBetweenNeighboursLikePercentileCont) {
  // SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM (VALUES (1),(2),(3),(4)) v(x) = 2.5
  EXPECT_EQ(pct({4, 1, 3, 2}, 0.5), 2.5);
  // Two values: 0.95 of the way from the smaller to the larger.
  EXPECT_DOUBLE_EQ(pct({100, 200}, 0.95), 195.0);
  EXPECT_DOUBLE_EQ(pct({200, 100}, 0.99), 199.0);
  // Eleven values 0..100 step 10: position 9.5 -> 95.
  EXPECT_DOUBLE_EQ(pct({100, 0, 90, 10, 80, 20, 70, 30, 60, 40, 50}, 0.95), 95.0);
  EXPECT_EQ(pct({7, 7, 7, 7}, 0.99), 7.0);
}

TEST(Percentile, RoundsHalfAwayFromZero) {
  EXPECT_EQ(round_half_away_from_zero(2.5), 3);
  EXPECT_EQ(round_half_away_from_zero(3.5), 4);
  EXPECT_EQ(round_half_away_from_zero(2.4999), 2);
  EXPECT_EQ(round_half_away_from_zero(0.0), 0);
}

TEST(SortUnique, CountsDistinctUuids) {
  std::vector<celaest::core::UuidBytes> ids(5);
  ids[0][0] = 3;
  ids[1][0] = 1;
  ids[2][0] = 3;
  ids[3][15] = 9;
  ids[4][0] = 1;
  EXPECT_EQ(celaest::core::sort_unique(ids.data(), ids.size()), 3u);
}

TEST(Percentile, OfSortedValuesEqualsTheSelection) {
  std::vector<std::int32_t> values;
  std::uint32_t seed = 12345;
  for (int n = 1; n <= 300; ++n) {
    seed = seed * 1103515245u + 12345u;
    values.push_back(static_cast<std::int32_t>(seed % 90000));
    std::vector<std::int32_t> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    for (double fraction : {0.0, 0.5, 0.95, 0.99, 1.0}) {
      std::vector<std::int32_t> shuffled = values;
      EXPECT_EQ(celaest::core::percentile_cont_sorted(sorted.data(), sorted.size(), fraction),
                percentile_cont(shuffled.data(), shuffled.size(), fraction))
          << n << " values, fraction " << fraction;
    }
  }
}
