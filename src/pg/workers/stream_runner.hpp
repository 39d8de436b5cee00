// The batch runner's engine (API.md submit_batch, issue 12): one libcurl multi handle kept full.
//
// A round: move the transfers along for a few milliseconds (no transaction open), then, when
// something is due, one short transaction that records whatever finished (group commit),
// claims more tasks to refill the free slots, and picks keys for the next requests; those are
// sent only once it has committed, so a task is never on the wire before its claim is durable.
// Tasks with no room in any key's rate windows wait in memory (pacing) instead of failing.
#pragma once

#include <memory>

namespace celaest::pg::workers {

class BatchStream {
 public:
  BatchStream();
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // One round. Returns how long the caller may sleep on its latch before the next one:
  // 0 = come back at once, negative = nothing to do until woken (or its own poll interval).
  long round();
  // The latch was set while the caller slept on it (and reset it): look for tasks at once.
  void woken();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace celaest::pg::workers
