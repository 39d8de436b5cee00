#include "core/weighted_pick.hpp"

#include <gtest/gtest.h>

namespace celaest::core {
namespace {

TEST(PickCandidate, EmptyIsNone) { EXPECT_FALSE(pick_candidate({}, 0.5).has_value()); }

TEST(PickCandidate, HighestPriorityFirst) {
  std::vector<Candidate> c = {{1, 100}, {5, 1}, {3, 100}};
  for (double r : {0.0, 0.3, 0.99, 1.0}) EXPECT_EQ(pick_candidate(c, r), 1u) << r;
}

TEST(PickCandidate, WeightedWithinTheGroup) {
  // priority 2: indices 1 (w=1), 2 (w=3), 4 (w=0); index 0 and 3 are lower priority
  std::vector<Candidate> c = {{1, 50}, {2, 1}, {2, 3}, {0, 9}, {2, 0}};
  EXPECT_EQ(pick_candidate(c, 0.0), 1u);
  EXPECT_EQ(pick_candidate(c, 0.2499), 1u);
  EXPECT_EQ(pick_candidate(c, 0.25), 2u);
  EXPECT_EQ(pick_candidate(c, 0.9999), 2u);
  EXPECT_EQ(pick_candidate(c, 1.0), 2u) << "the top of the range lands on the last positive weight";
}

TEST(PickCandidate, DistributionFollowsWeights) {
  std::vector<Candidate> c = {{0, 1}, {0, 3}, {0, 0}};
  int counts[3] = {0, 0, 0};
  const int n = 10000;
  for (int i = 0; i < n; ++i) ++counts[*pick_candidate(c, (i + 0.5) / n)];
  EXPECT_EQ(counts[0], 2500);
  EXPECT_EQ(counts[1], 7500);
  EXPECT_EQ(counts[2], 0) << "weight 0 is never chosen";
}

TEST(PickCandidate, DrainedTopGroupFallsThrough) {
  // The top priority has only weight-0 entries: it is drained, the next group serves.
  std::vector<Candidate> c = {{9, 0}, {9, 0}, {4, 2}};
  EXPECT_EQ(pick_candidate(c, 0.0), 2u);
  EXPECT_EQ(pick_candidate(c, 0.99), 2u);
}

TEST(PickCandidate, AllZeroIsUniformOverTopPriority) {
  std::vector<Candidate> c = {{1, 0}, {2, 0}, {2, 0}, {2, -4}};
  EXPECT_EQ(pick_candidate(c, 0.0), 1u);
  EXPECT_EQ(pick_candidate(c, 0.34), 2u);
  EXPECT_EQ(pick_candidate(c, 0.7), 3u);
  EXPECT_EQ(pick_candidate(c, 1.0), 3u);
}

TEST(PickCandidate, NegativeWeightIsZeroAndOddRandomsAreClamped) {
  std::vector<Candidate> c = {{0, -10}, {0, 5}};
  EXPECT_EQ(pick_candidate(c, 0.0), 1u);
  EXPECT_EQ(pick_candidate(c, -3.0), 1u);
  EXPECT_EQ(pick_candidate(c, 42.0), 1u);
}

}  // namespace
}  // namespace celaest::core
