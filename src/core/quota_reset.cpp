#include "core/quota_reset.hpp"

#include "core/http_date.hpp"

namespace celaest::core {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

// 1970-01-01 was a Thursday: 0 = Sunday.
int weekday(long long days) { return static_cast<int>(((days % 7) + 7 + 4) % 7); }

// The nth (1-based) Sunday of a month, in days since the epoch.
long long nth_sunday(long long year, unsigned month, int n) {
  const long long first = days_from_civil(year, month, 1);
  return first + (7 - weekday(first)) % 7 + 7LL * (n - 1);
}

long long year_of(long long days) {
  long long year = 1970 + floor_div(days * 400, 146097);
  while (days_from_civil(year + 1, 1, 1) <= days) ++year;
  while (days_from_civil(year, 1, 1) > days) --year;
  return year;
}

}  // namespace

int64_t pacific_offset_ms(int64_t utc_ms) {
  // The year as read in UTC: the transitions lie months away from the new year.
  const long long year = year_of(floor_div(utc_ms, kDayMs));
  // 02:00 PST = 10:00 UTC (spring forward); 02:00 PDT = 09:00 UTC (fall back).
  const int64_t dst_start = nth_sunday(year, 3, 2) * kDayMs + 10 * kHourMs;
  const int64_t dst_end = nth_sunday(year, 11, 1) * kDayMs + 9 * kHourMs;
  return utc_ms >= dst_start && utc_ms < dst_end ? -7 * kHourMs : -8 * kHourMs;
}

int64_t next_pacific_midnight_ms(int64_t utc_ms) {
  const int64_t local_ms = utc_ms + pacific_offset_ms(utc_ms);
  const int64_t next_local_midnight = (floor_div(local_ms, kDayMs) + 1) * kDayMs;
  // The offset in force at that midnight (the clocks change at 02:00, never at midnight).
  const int64_t guess = next_local_midnight - pacific_offset_ms(utc_ms);
  return next_local_midnight - pacific_offset_ms(guess);
}

}  // namespace celaest::core
