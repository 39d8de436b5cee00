// How many sockets this process may open for HTTP transfers without starving PostgreSQL of
// file descriptors (every socket is one).
#pragma once

#include <cstddef>

namespace celaest::pg {

// Raises the soft limit on open files to the hard one (once per process) and returns what is
// left beyond PostgreSQL's own budget (max_safe_fds) and a reserve for libcurl's wake-up pipe,
// resolver threads and the odd file PostgreSQL opens outside its accounting. At least 1.
size_t socket_budget();

}  // namespace celaest::pg
