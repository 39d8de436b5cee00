#include "http/retry_after.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "http/headers.hpp"
#include "http/pure_cpp.hpp"

namespace celaest::http {

namespace {

using std::chrono::milliseconds;

// Beyond any delay a caller would wait; keeps the arithmetic far from overflow.
constexpr long long kMaxMilliseconds = 366LL * 24 * 3600 * 1000;

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "12", "1.5", "0.250" -> that many `unit_ms`, rounded down to a millisecond. Hand-written
// rather than strtod, whose decimal point follows the locale.
std::optional<milliseconds> parse_decimal(std::string_view text, long long unit_ms) {
  text = trim(text);
  long long whole = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    whole = std::min(whole * 10 + (text[i] - '0'), kMaxMilliseconds);
  }
  if (i == 0) return std::nullopt;
  long long fraction = 0;
  long long divisor = 1;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (divisor < 1000000) {  // digits past a microsecond change nothing
        fraction = fraction * 10 + (text[i] - '0');
        divisor *= 10;
      }
    }
  }
  if (i != text.size()) return std::nullopt;
  return milliseconds(std::min(whole * unit_ms + fraction * unit_ms / divisor, kMaxMilliseconds));
}

std::optional<milliseconds> parse_http_date(std::string_view text, std::chrono::system_clock::time_point now) {
  const std::string copy(trim(text));  // curl_getdate wants a terminated string
  const time_t when = curl_getdate(copy.c_str(), nullptr);
  if (when == static_cast<time_t>(-1)) return std::nullopt;
  const auto delay = std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::from_time_t(when) - now);
  if (delay.count() < 0) return milliseconds(0);
  return milliseconds(std::min<long long>(delay.count(), kMaxMilliseconds));
}

}  // namespace

std::optional<milliseconds> retry_after(const std::vector<Header>& headers, std::chrono::system_clock::time_point now) {
  if (auto value = find_header(headers, "retry-after-ms")) {
    if (auto delay = parse_decimal(*value, 1)) return delay;
  }
  if (auto value = find_header(headers, "retry-after")) {
    if (auto delay = parse_decimal(*value, 1000)) return delay;
    return parse_http_date(*value, now);
  }
  return std::nullopt;
}

}  // namespace celaest::http
