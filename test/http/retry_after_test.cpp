#include "http/retry_after.hpp"

#include <gtest/gtest.h>

namespace celaest::http {
namespace {

using std::chrono::milliseconds;

// Sun, 06 Nov 1994 08:49:37 GMT
const auto kNow = std::chrono::system_clock::from_time_t(784111777);

TEST(RetryAfter, SecondsIntegerAndFractional) {
  EXPECT_EQ(retry_after({{"Retry-After", "7"}}, kNow), milliseconds(7000));
  EXPECT_EQ(retry_after({{"retry-after", " 1.5 "}}, kNow), milliseconds(1500));
  EXPECT_EQ(retry_after({{"retry-after", "0"}}, kNow), milliseconds(0));
}

TEST(RetryAfter, MillisecondsHeaderWinsOverSeconds) {
  EXPECT_EQ(retry_after({{"retry-after", "30"}, {"retry-after-ms", "250"}}, kNow), milliseconds(250));
  EXPECT_EQ(retry_after({{"Retry-After-Ms", "12.9"}}, kNow), milliseconds(12));
  // An unreadable retry-after-ms falls back to retry-after.
  EXPECT_EQ(retry_after({{"retry-after-ms", "soon"}, {"retry-after", "2"}}, kNow), milliseconds(2000));
}

TEST(RetryAfter, HttpDatesInEveryFormat) {
  EXPECT_EQ(retry_after({{"Retry-After", "Sun, 06 Nov 1994 08:50:07 GMT"}}, kNow), milliseconds(30000));
  EXPECT_EQ(retry_after({{"Retry-After", "Sunday, 06-Nov-94 08:50:07 GMT"}}, kNow), milliseconds(30000));
  EXPECT_EQ(retry_after({{"Retry-After", "Sun Nov  6 08:50:07 1994"}}, kNow), milliseconds(30000));
  EXPECT_EQ(retry_after({{"Retry-After", "Sun, 06 Nov 1994 08:00:00 GMT"}}, kNow), milliseconds(0));  // past
}

TEST(RetryAfter, AbsentOrUnreadable) {
  EXPECT_FALSE(retry_after({}, kNow).has_value());
  EXPECT_FALSE(retry_after({{"x-ratelimit-reset-requests", "1s"}}, kNow).has_value());
  EXPECT_FALSE(retry_after({{"retry-after", "-5"}}, kNow).has_value());
  EXPECT_FALSE(retry_after({{"retry-after", "soon"}}, kNow).has_value());
  EXPECT_FALSE(retry_after({{"retry-after", ""}}, kNow).has_value());
}

TEST(RetryAfter, HugeValuesDoNotOverflow) {
  const auto delay = retry_after({{"retry-after", "99999999999999999999999"}}, kNow);
  ASSERT_TRUE(delay.has_value());
  EXPECT_GT(delay->count(), 0);
}

}  // namespace
}  // namespace celaest::http
