#include "core/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace celaest::core {

long backoff_delay_ms(int attempt, long base_ms, long cap_ms, std::optional<long> retry_after_ms, double jitter01) {
  const long cap = std::max(cap_ms, 0L);
  if (retry_after_ms) return std::clamp(*retry_after_ms, 0L, cap);
  const long base = std::max(base_ms, 0L);
  // Double the ceiling attempt-1 times, stopping at the cap (also keeps it from overflowing).
  long ceiling = std::min(base, cap);
  for (int i = 1; i < attempt && ceiling < cap; ++i) ceiling = (ceiling > cap / 2) ? cap : ceiling * 2;
  const double jitter = std::isnan(jitter01) ? 0.0 : std::clamp(jitter01, 0.0, 1.0);
  // Compare in double before converting back: near LONG_MAX the product rounds up past it.
  const double scaled = jitter * static_cast<double>(ceiling);
  if (scaled >= static_cast<double>(ceiling)) return ceiling;
  return std::clamp(std::lround(scaled), 0L, ceiling);
}

}  // namespace celaest::core
