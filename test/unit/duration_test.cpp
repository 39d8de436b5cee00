#include "core/duration.hpp"

#include <gtest/gtest.h>

namespace celaest::core {
namespace {

TEST(ParseDuration, ProviderHints) {
  EXPECT_EQ(parse_duration_ms("37s"), 37000);
  EXPECT_EQ(parse_duration_ms("45.837906927s"), 45838);  // rounded up, never shorter
  EXPECT_EQ(parse_duration_ms("1s"), 1000);
  EXPECT_EQ(parse_duration_ms("6m0s"), 360000);
  EXPECT_EQ(parse_duration_ms("120ms"), 120);
  EXPECT_EQ(parse_duration_ms("2m59.56s"), 179560);
  EXPECT_EQ(parse_duration_ms("7.66s"), 7660);
}

TEST(ParseDuration, OtherGoForms) {
  EXPECT_EQ(parse_duration_ms("1h2m3.5s"), 3723500);
  EXPECT_EQ(parse_duration_ms("0"), 0);
  EXPECT_EQ(parse_duration_ms("0s"), 0);
  EXPECT_EQ(parse_duration_ms("1500us"), 2);  // 1.5 ms rounds up
  EXPECT_EQ(parse_duration_ms("1500\xC2\xB5s"), 2);
  EXPECT_EQ(parse_duration_ms("999999ns"), 1);
  EXPECT_EQ(parse_duration_ms("1.5h"), 5400000);
  EXPECT_EQ(parse_duration_ms(" 30s "), 30000);
  EXPECT_EQ(parse_duration_ms(".5s"), 500);
}

TEST(ParseDuration, Rejects) {
  EXPECT_FALSE(parse_duration_ms("").has_value());
  EXPECT_FALSE(parse_duration_ms("30").has_value());  // a unit is required
  EXPECT_FALSE(parse_duration_ms("-1s").has_value());
  EXPECT_FALSE(parse_duration_ms("s").has_value());
  EXPECT_FALSE(parse_duration_ms("1x").has_value());
  EXPECT_FALSE(parse_duration_ms("1s junk").has_value());
  EXPECT_FALSE(parse_duration_ms("99999999999999h").has_value());
}

TEST(ParseSeconds, DecimalSecondsToMs) {
  EXPECT_EQ(parse_seconds_ms("30"), 30000);
  EXPECT_EQ(parse_seconds_ms("1.5"), 1500);
  EXPECT_EQ(parse_seconds_ms("0.0001"), 1);
  EXPECT_FALSE(parse_seconds_ms("-1").has_value());
  EXPECT_FALSE(parse_seconds_ms("1s").has_value());
  EXPECT_FALSE(parse_seconds_ms("").has_value());
}

TEST(ParseMillis, DecimalMilliseconds) {
  EXPECT_EQ(parse_millis_ms("250"), 250);
  EXPECT_EQ(parse_millis_ms("120.2"), 121);
  EXPECT_EQ(parse_millis_ms("0"), 0);
  EXPECT_FALSE(parse_millis_ms("12ms").has_value());
  EXPECT_FALSE(parse_millis_ms("").has_value());
}

}  // namespace
}  // namespace celaest::core
