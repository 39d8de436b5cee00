#include "pg/boundary/descriptors.hpp"

extern "C" {
#include "postgres.h"

#include "storage/fd.h"
}

#include <sys/resource.h>

#include <algorithm>

namespace celaest::pg {

namespace {

// fd.c keeps NUM_RESERVED_FDS (10) beyond max_safe_fds for itself; libcurl needs a few of its
// own besides the sockets.
constexpr long kReservedDescriptors = 64;

}  // namespace

size_t socket_budget() {
  static long budget = -1;
  if (budget >= 0) return static_cast<size_t>(budget);
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
  const rlim_t ceiling = limit.rlim_max == RLIM_INFINITY ? rlim_t(1) << 20 : limit.rlim_max;
  if (limit.rlim_cur < ceiling) {
    struct rlimit raised = limit;
    raised.rlim_cur = ceiling;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  budget = std::max(1L, static_cast<long>(limit.rlim_cur) - max_safe_fds - kReservedDescriptors);
  return static_cast<size_t>(budget);
}

}  // namespace celaest::pg
