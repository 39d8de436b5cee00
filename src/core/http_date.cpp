#include "core/http_date.hpp"

#include <array>
#include <string>
#include <vector>

#include "core/text.hpp"

namespace celaest::core {
namespace {

constexpr std::array<std::string_view, 12> kMonths{"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};

bool is_leap(long long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(long long y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap(y)) ? 29 : kDays[m - 1];
}

std::vector<std::string_view> tokens(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  auto separator = [](char c) { return c == ' ' || c == ',' || c == '-' || c == '\t'; };
  while (i < text.size()) {
    while (i < text.size() && separator(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !separator(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::optional<long long> number(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (!ascii_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool parse_clock(std::string_view s, long long& h, long long& m, long long& sec) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  auto hh = number(s.substr(0, 2)), mm = number(s.substr(3, 2)), ss = number(s.substr(6, 2));
  if (!hh || !mm || !ss || *hh > 23 || *mm > 59 || *ss > 60) return false;  // 60: leap second
  h = *hh, m = *mm, sec = *ss;
  return true;
}

}  // namespace

// Days since 1970-01-01 of a proleptic Gregorian date: shift the year to start in March
// so the leap day is last, then count whole 400-year eras (146097 days each).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  // The three forms differ only in order and separators; the fields are recognisable by
  // shape: a month name, an hh:mm:ss clock, and two numbers (day first, then year).
  unsigned month = 0;
  long long hour = -1, minute = 0, second = 0;
  std::vector<long long> numbers;
  for (std::string_view token : tokens(trim(text))) {
    if (token.find(':') != std::string_view::npos) {
      if (hour >= 0 || !parse_clock(token, hour, minute, second)) return std::nullopt;
      continue;
    }
    if (auto n = number(token)) {
      numbers.push_back(*n);
      continue;
    }
    for (unsigned i = 0; i < kMonths.size(); ++i) {
      if (token.size() == 3 && iequals(token, kMonths[i])) month = i + 1;
    }
    // Anything else (weekday, "GMT", "UTC") carries nothing we need.
  }
  if (month == 0 || hour < 0 || numbers.size() != 2) return std::nullopt;
  const long long day = numbers[0];
  long long year = numbers[1];
  if (year < 100) year += (year < 70) ? 2000 : 1900;  // RFC 850 two-digit years
  if (year < 1970 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  const long long secs =
      days_from_civil(year, month, static_cast<unsigned>(day)) * 86400 + hour * 3600 + minute * 60 + second;
  // system_clock counts nanoseconds in 64 bits, up to 2262: a later date (a four-digit
  // year allows 9999) cannot be represented, and converting it would overflow.
  constexpr long long kLatest =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max()).count();
  if (secs > kLatest) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs));
}

}  // namespace celaest::core
