// When a spent daily quota resets (core/quota_reset.hpp): midnight America/Los_Angeles.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/http_date.hpp"
#include "core/quota_reset.hpp"

namespace celaest::core {
namespace {

constexpr int64_t kHour = 3'600'000;

int64_t utc(long long y, unsigned m, unsigned d, int hour = 0, int minute = 0) {
  return days_from_civil(y, m, d) * 24 * kHour + hour * kHour + minute * 60'000LL;
}

TEST(QuotaReset, PacificOffsetFollowsDaylightSavingTime) {
  EXPECT_EQ(pacific_offset_ms(utc(2026, 1, 15, 12)), -8 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2026, 7, 1, 12)), -7 * kHour);
  // 2026: DST from Sunday 8 March 02:00 PST (10:00 UTC) to Sunday 1 November 02:00 PDT (09:00 UTC).
  EXPECT_EQ(pacific_offset_ms(utc(2026, 3, 8, 9, 59)), -8 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2026, 3, 8, 10, 0)), -7 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2026, 11, 1, 8, 59)), -7 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2026, 11, 1, 9, 0)), -8 * kHour);
  // 2024: 10 March and 3 November.
  EXPECT_EQ(pacific_offset_ms(utc(2024, 3, 10, 10, 0)), -7 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2024, 3, 9, 12)), -8 * kHour);
  EXPECT_EQ(pacific_offset_ms(utc(2024, 11, 3, 9, 0)), -8 * kHour);
}

TEST(QuotaReset, NextMidnightPacific) {
  // Winter: midnight PST = 08:00 UTC.
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 12, 8, 0, 45)), utc(2026, 12, 8, 8));
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 12, 8, 8)), utc(2026, 12, 9, 8)) << "strictly after";
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 12, 8, 7, 59)), utc(2026, 12, 8, 8));
  // Summer: midnight PDT = 07:00 UTC.
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 7, 1, 12)), utc(2026, 7, 2, 7));
  // Across the changes: the day of the change starts at the old offset's midnight.
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 3, 7, 12)), utc(2026, 3, 8, 8));
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 3, 8, 12)), utc(2026, 3, 9, 7));
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 10, 31, 12)), utc(2026, 11, 1, 7));
  EXPECT_EQ(next_pacific_midnight_ms(utc(2026, 11, 1, 12)), utc(2026, 11, 2, 8));
  // New year's eve in Los Angeles is already 1 January in UTC.
  EXPECT_EQ(next_pacific_midnight_ms(utc(2027, 1, 1, 3)), utc(2027, 1, 1, 8));
}

TEST(QuotaReset, NeverMoreThanADayAhead) {
  for (int64_t t = utc(2026, 1, 1); t < utc(2027, 1, 1); t += 7 * kHour + 13 * 60'000) {
    const int64_t next = next_pacific_midnight_ms(t);
    ASSERT_GT(next, t);
    ASSERT_LE(next - t, 25 * kHour) << t;
    ASSERT_EQ((next + pacific_offset_ms(next)) % (24 * kHour), 0) << "a local midnight: " << t;
  }
}

}  // namespace
}  // namespace celaest::core
