// Wall-clock milliseconds since the Unix epoch: timestamps recorded with tasks and the
// windows of the key pool (shared by every backend, so not a monotonic clock).
#pragma once

#include <chrono>
#include <cstdint>

namespace celaest::pg {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A uniform draw in [0, 1): key selection by weight and back-off jitter.
double random_unit();

}  // namespace celaest::pg
