// Inputs the fuzz targets in test/fuzz found to break the core, each kept as a plain test
// so the fix stays fixed without running the fuzzer.
#include <gtest/gtest.h>

#include <chrono>

#include "core/http_date.hpp"
#include "core/retry_hint.hpp"

namespace celaest::core {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// fuzz http_date: a year past 2262 does not fit system_clock's 64-bit nanoseconds; the
// conversion overflowed (UBSan: signed multiplication overflow in duration_cast).
TEST(FuzzFindings, HttpDateBeyondTheClockRangeIsRejected) {
  EXPECT_FALSE(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").has_value());
  EXPECT_FALSE(parse_http_date("Sat, 12 Apr 2262 00:00:00 GMT").has_value());
  // The last representable day still parses.
  EXPECT_EQ(parse_http_date("Fri, 11 Apr 2262 00:00:00 GMT"), system_clock::time_point(seconds(9223286400LL)));
}

// fuzz retry_hint: the same overflow reached through a Retry-After header; such a hint is
// ignored like any other unreadable one.
TEST(FuzzFindings, RetryAfterWithAFarFutureDateIsIgnored) {
  const system_clock::time_point now{seconds(1700000000)};
  EXPECT_FALSE(retry_after_ms({{"Retry-After", "Wed, 21 Oct 4030 07:28:00 GMT"}}, now).has_value());
}

}  // namespace
}  // namespace celaest::core
