#include "core/quota.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace core = celaest::core;

TEST(Quota, AllowsWithinTheLimit) {
  auto answer = core::answer_quota("VALID", 100, 40, 60);
  EXPECT_TRUE(answer.allowed);
  EXPECT_EQ(answer.limit, 100);
  EXPECT_EQ(answer.used, 40);
  EXPECT_EQ(answer.remaining, 60);
  EXPECT_EQ(answer.code, "VALID");
}

TEST(Quota, RefusesOneOverTheLimit) {
  auto answer = core::answer_quota("VALID", 100, 40, 61);
  EXPECT_FALSE(answer.allowed);
  EXPECT_EQ(answer.remaining, 60);
  EXPECT_EQ(answer.code, "QUOTA_EXCEEDED");
}

TEST(Quota, UnlimitedAllowsAnything) {
  auto answer = core::answer_quota("VALID", core::kUnlimited, 5'000'000, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(answer.allowed);
  EXPECT_EQ(answer.remaining, core::kUnlimited);
  EXPECT_EQ(answer.code, "VALID");
}

TEST(Quota, ALicenseNotValidAllowsNothingAndKeepsItsCode) {
  auto answer = core::answer_quota("SUSPENDED", 100, 0, 1);
  EXPECT_FALSE(answer.allowed);
  EXPECT_EQ(answer.code, "SUSPENDED");
  EXPECT_EQ(answer.remaining, 100);
  // Even when the amount would not fit: the license's state is the reason given.
  EXPECT_EQ(core::answer_quota("EXPIRED", 1, 1, 5).code, "EXPIRED");
}

TEST(Quota, UsageAboveTheLimitLeavesNothingNotANegativeRemainder) {
  // A limit lowered below what the period already used.
  auto answer = core::answer_quota("VALID", 10, 25, 0);
  EXPECT_EQ(answer.remaining, 0);
  EXPECT_FALSE(answer.allowed);
  EXPECT_EQ(answer.code, "QUOTA_EXCEEDED");
}

TEST(Quota, ZeroAmountFitsExactlyAtTheLimit) {
  EXPECT_TRUE(core::answer_quota("VALID", 10, 10, 0).allowed);
  EXPECT_FALSE(core::answer_quota("VALID", 10, 10, 1).allowed);
}

TEST(Quota, HugeAmountsDoNotOverflow) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_FALSE(core::fits_quota(max, max - 1, 2));
  EXPECT_TRUE(core::fits_quota(max, max - 1, 1));
  EXPECT_FALSE(core::fits_quota(100, 50, max));
}

TEST(Quota, JsonNamesEveryField) {
  EXPECT_EQ(core::quota_answer_json(core::answer_quota("VALID", 100, 40, 1)),
            R"({"allowed": true, "limit": 100, "used": 40, "remaining": 60, "code": "VALID"})");
  EXPECT_EQ(core::quota_answer_json(core::answer_quota("VALID", -1, 7, 1)),
            R"({"allowed": true, "limit": -1, "used": 7, "remaining": -1, "code": "VALID"})");
}
