#include "core/cost.hpp"

#include <limits>
#include <stdexcept>

#include <gtest/gtest.h>

namespace celaest::core {
namespace {

TEST(ParsePrice, DecimalsToMillionths) {
  EXPECT_EQ(parse_price_micro("0.002500"), 2500);
  EXPECT_EQ(parse_price_micro("1"), 1000000);
  EXPECT_EQ(parse_price_micro(".5"), 500000);
  EXPECT_EQ(parse_price_micro("0.000001"), 1);
  EXPECT_EQ(parse_price_micro("9999.999999"), 9999999999LL);
  EXPECT_EQ(parse_price_micro(" 0.15 "), 150000);
  EXPECT_EQ(parse_price_micro("-0.1"), -100000);
  EXPECT_EQ(parse_price_micro("0.0000005"), 1) << "7th digit rounds half away from zero";
  EXPECT_EQ(parse_price_micro("0.0000004"), 0);
  EXPECT_EQ(parse_price_micro("-0.0000005"), -1);
  EXPECT_FALSE(parse_price_micro("").has_value());
  EXPECT_FALSE(parse_price_micro(".").has_value());
  EXPECT_FALSE(parse_price_micro("1e-3").has_value());
  EXPECT_FALSE(parse_price_micro("1.2.3").has_value());
  EXPECT_FALSE(parse_price_micro("NaN").has_value());
}

TEST(Cost, ExactMicroDollars) {
  // 1000 in @ $0.15/1k + 500 out @ $0.60/1k = 0.15 + 0.30 = $0.45
  EXPECT_EQ(cost_micro_usd(1000, 500, "0.150000", "0.600000"), 450000);
  // 19 in @ 0.00015 + 10 out @ 0.0006 = 0.00000285 + 0.000006 = 0.00000885 → 0.000009
  EXPECT_EQ(cost_micro_usd(19, 10, "0.000150", "0.000600"), 9);
  // 1 token @ $0.0005/1k = $0.0000005: exactly half a micro-dollar rounds up
  EXPECT_EQ(cost_micro_usd(1, 0, "0.000500", "0"), 1);
  EXPECT_EQ(cost_micro_usd(1, 0, "0.000499", "0"), 0);
  // 3 @ 0.001 = 0.000003
  EXPECT_EQ(cost_micro_usd(3, 0, "0.001", ""), 3);
}

TEST(Cost, NoPriceIsFree) {
  EXPECT_EQ(cost_micro_usd(123456, 654321, "", ""), 0);
  EXPECT_EQ(cost_micro_usd(123456, 654321, "  ", "0.000000"), 0);
}

TEST(Cost, HalfAwayFromZeroForNegatives) {
  EXPECT_EQ(cost_micro_usd(1, 0, "-0.000500", ""), -1);
  EXPECT_EQ(cost_micro_usd(1, 0, "-0.000499", ""), 0);
}

TEST(Cost, LargeValuesStayExact) {
  // 10^12 tokens at $9999.999999/1k = 9'999'999'999 * 10^12 / 1000 micro = 9'999'999'999'000'000'000 > LLONG_MAX
  EXPECT_EQ(cost_micro_usd(1'000'000'000'000LL, 0, "9999.999999", ""), std::numeric_limits<long long>::max());
  // 10^9 tokens each way at $2.5/1k and $10/1k: 2.5e6 + 1e7 dollars = 1.25e13 micro
  EXPECT_EQ(cost_micro_usd(1'000'000'000LL, 1'000'000'000LL, "2.500000", "10.000000"), 12'500'000'000'000LL);
}

TEST(Cost, InvalidPriceThrows) {
  EXPECT_THROW(cost_micro_usd(1, 1, "abc", "0"), std::invalid_argument);
  EXPECT_THROW(cost_micro_usd(1, 1, "0", "1,5"), std::invalid_argument);
}

TEST(Cost, NanoDollarsSumExactlyAndRoundOnce) {
  // 19 × 0.0025 + 10 × 0.01 per 1000 = 147.5 micro-dollars: 147500 nano.
  EXPECT_EQ(cost_nano_usd(19, 10, "0.002500", "0.010000"), 147'500);
  EXPECT_EQ(micro_usd_from_nano(147'500), 148) << "half away from zero, as cost_micro_usd";
  EXPECT_EQ(micro_usd_from_nano(147'499), 147);
  EXPECT_EQ(micro_usd_from_nano(-1'500), -2);
  // Two attempts of 147.5 and 43.5: 191 once rounded, not 148 + 44.
  EXPECT_EQ(micro_usd_from_nano(cost_nano_usd(19, 10, "0.002500", "0.010000") + cost_nano_usd(29, 0, "0.0015", "")),
            191);
  // One attempt: the same figure as cost_micro_usd.
  for (long long tokens : {0LL, 1LL, 7LL, 999LL, 123'456LL})
    EXPECT_EQ(micro_usd_from_nano(cost_nano_usd(tokens, tokens * 3, "0.123457", "0.987651")),
              cost_micro_usd(tokens, tokens * 3, "0.123457", "0.987651"));
  EXPECT_EQ(cost_nano_usd(5, 5, "", ""), 0);
  EXPECT_THROW(cost_nano_usd(1, 1, "abc", "0"), std::invalid_argument);
}

TEST(FormatMicroUsd, SixDecimals) {
  EXPECT_EQ(format_micro_usd(0), "0.000000");
  EXPECT_EQ(format_micro_usd(9), "0.000009");
  EXPECT_EQ(format_micro_usd(450000), "0.450000");
  EXPECT_EQ(format_micro_usd(12'500'000'000'000LL), "12500000.000000");
  EXPECT_EQ(format_micro_usd(-1), "-0.000001");
  EXPECT_EQ(format_micro_usd(std::numeric_limits<long long>::min()), "-9223372036854.775808");
}

}  // namespace
}  // namespace celaest::core
