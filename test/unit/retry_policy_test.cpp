#include "core/retry_policy.hpp"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace celaest::core {
namespace {

TEST(Backoff, ExponentialCeilingWithFullJitter) {
  // jitter 1.0 shows the ceiling: base * 2^(attempt-1)
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000, std::nullopt, 1.0), 500);
  EXPECT_EQ(backoff_delay_ms(2, 500, 30000, std::nullopt, 1.0), 1000);
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, 1.0), 2000);
  EXPECT_EQ(backoff_delay_ms(4, 500, 30000, std::nullopt, 1.0), 4000);
  // full jitter: anywhere in [0, ceiling]
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, 0.0), 0);
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, 0.25), 500);
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, 0.5), 1000);
}

TEST(Backoff, CappedAndOverflowSafe) {
  EXPECT_EQ(backoff_delay_ms(7, 500, 30000, std::nullopt, 1.0), 30000);
  EXPECT_EQ(backoff_delay_ms(1000, 500, 30000, std::nullopt, 1.0), 30000);
  EXPECT_EQ(backoff_delay_ms(std::numeric_limits<int>::max(), std::numeric_limits<long>::max(),
                             std::numeric_limits<long>::max(), std::nullopt, 1.0),
            std::numeric_limits<long>::max());
  EXPECT_EQ(backoff_delay_ms(1, 5000, 1000, std::nullopt, 1.0), 1000) << "base above cap";
}

TEST(Backoff, ServerDelayHonouredButCapped) {
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000, 20000L, 0.0), 20000) << "no jitter on a server's own delay";
  EXPECT_EQ(backoff_delay_ms(5, 500, 30000, 120L, 0.9), 120);
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000, 3'600'000L, 0.5), 30000);
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000, 0L, 0.5), 0);
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000, -5L, 0.5), 0);
}

TEST(Backoff, DegenerateInputs) {
  EXPECT_EQ(backoff_delay_ms(0, 500, 30000, std::nullopt, 1.0), 500) << "attempt < 1 acts as 1";
  EXPECT_EQ(backoff_delay_ms(-3, 500, 30000, std::nullopt, 1.0), 500);
  EXPECT_EQ(backoff_delay_ms(3, -500, 30000, std::nullopt, 1.0), 0);
  EXPECT_EQ(backoff_delay_ms(3, 500, -1, std::nullopt, 1.0), 0);
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, 7.0), 2000) << "jitter clamped to 1";
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, -1.0), 0);
  EXPECT_EQ(backoff_delay_ms(3, 500, 30000, std::nullopt, std::nan("")), 0);
}

}  // namespace
}  // namespace celaest::core
