#include "core/retry_hint.hpp"

#include <gtest/gtest.h>

#include "core/http_date.hpp"

namespace celaest::core {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// 1994-11-06T08:49:37Z, the RFC's example date.
const system_clock::time_point kRfcExample{seconds(784111777)};

TEST(HttpDate, ThreeFormsOfTheSameInstant) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), kRfcExample);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), kRfcExample);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), kRfcExample);
}

TEST(HttpDate, LeapYearsAndRejects) {
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"), system_clock::time_point(seconds(1709164800)));
  EXPECT_FALSE(parse_http_date("Thu, 29 Feb 2023 00:00:00 GMT").has_value());
  EXPECT_FALSE(parse_http_date("Thu, 01 Foo 2024 00:00:00 GMT").has_value());
  EXPECT_FALSE(parse_http_date("Thu, 01 Jan 2024 25:00:00 GMT").has_value());
  EXPECT_FALSE(parse_http_date("soon").has_value());
  EXPECT_FALSE(parse_http_date("").has_value());
}

TEST(RetryAfter, DeltaSeconds) {
  EXPECT_EQ(retry_after_ms({{"Retry-After", "20"}}), 20000);
  EXPECT_EQ(retry_after_ms({{"retry-after", "1.5"}}), 1500);
  EXPECT_EQ(retry_after_ms({{"retry-after", "0"}}), 0);
}

TEST(RetryAfter, HttpDateMeasuredFromNow) {
  const auto now = kRfcExample - seconds(42);
  EXPECT_EQ(retry_after_ms({{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}}, now), 42000);
  // A date already past means "now".
  EXPECT_EQ(retry_after_ms({{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}}, kRfcExample + seconds(5)), 0);
}

TEST(RetryAfter, MillisecondHeaderWinsOverSeconds) {
  EXPECT_EQ(retry_after_ms({{"retry-after", "20"}, {"retry-after-ms", "250"}}), 250);
  EXPECT_EQ(retry_after_ms({{"retry-after-ms", "120.2"}}), 121);
  // An unreadable retry-after-ms falls back to retry-after.
  EXPECT_EQ(retry_after_ms({{"retry-after-ms", "soon"}, {"retry-after", "3"}}), 3000);
}

TEST(RetryAfter, AbsentOrGarbage) {
  EXPECT_FALSE(retry_after_ms({}).has_value());
  EXPECT_FALSE(retry_after_ms({{"retry-after", "later"}}).has_value());
  EXPECT_FALSE(retry_after_ms({{"x-ratelimit-reset-requests", "1s"}}).has_value());
}

TEST(RateLimitReset, OnlyExhaustedLimitsCount) {
  std::vector<Header> h = {{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "6m0s"},
                           {"x-ratelimit-remaining-tokens", "1200"}, {"x-ratelimit-reset-tokens", "120ms"}};
  EXPECT_EQ(rate_limit_reset_ms(h), 360000);
  h[0].value = "3";
  EXPECT_FALSE(rate_limit_reset_ms(h).has_value());
  h[2].value = "0";
  EXPECT_EQ(rate_limit_reset_ms(h), 120);
}

}  // namespace
}  // namespace celaest::core
