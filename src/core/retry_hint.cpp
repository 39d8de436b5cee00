#include "core/retry_hint.hpp"

#include <algorithm>
#include <string>

#include "core/duration.hpp"
#include "core/headers.hpp"
#include "core/http_date.hpp"

namespace celaest::core {

std::optional<long> retry_after_ms(const std::vector<Header>& headers, std::chrono::system_clock::time_point now) {
  if (auto ms = find_header(headers, "retry-after-ms")) {
    if (auto parsed = parse_millis_ms(*ms)) return parsed;
  }
  auto value = find_header(headers, "retry-after");
  if (!value) return std::nullopt;
  if (auto secs = parse_seconds_ms(*value)) return secs;
  if (auto when = parse_http_date(*value)) {
    const auto delta = std::chrono::duration_cast<std::chrono::milliseconds>(*when - now).count();
    return static_cast<long>(std::max<long long>(delta, 0));
  }
  return std::nullopt;
}

std::optional<long> rate_limit_reset_ms(const std::vector<Header>& headers) {
  std::optional<long> longest;
  for (const char* kind : {"requests", "tokens"}) {
    auto remaining = find_header(headers, std::string("x-ratelimit-remaining-") + kind);
    if (!remaining || *remaining != "0") continue;
    auto reset = find_header(headers, std::string("x-ratelimit-reset-") + kind);
    if (!reset) continue;
    if (auto ms = parse_duration_ms(*reset)) longest = std::max(longest.value_or(0), *ms);
  }
  return longest;
}

}  // namespace celaest::core
