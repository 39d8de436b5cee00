// The back-off hints read from response headers: Retry-After (seconds or an HTTP date),
// retry-after-ms, and the x-ratelimit-remaining/reset pairs with their Go-style durations.
// Input: "name: value" lines (the corpus format's header block).
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/retry_hint.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = fuzz::as_view(data, size);
  const std::vector<core::Header> headers = fuzz::parse_headers(rest);
  // A fixed "now" keeps a run reproducible; a second, far one reaches the clamping.
  const std::chrono::system_clock::time_point now{std::chrono::seconds(1700000000)};
  for (auto at : {now, std::chrono::system_clock::time_point{}}) {
    if (auto ms = core::retry_after_ms(headers, at)) CELAEST_FUZZ_CHECK(*ms >= 0);
  }
  if (auto ms = core::rate_limit_reset_ms(headers)) CELAEST_FUZZ_CHECK(*ms >= 0);
  return 0;
}
