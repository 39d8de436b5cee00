// A libcurl multi handle kept full by its caller: transfers start one at a time and end one at
// a time, so a slot freed by a finished transfer is refilled at once (no passes, no waves).
// The batch runner keeps one for its whole life; its connections and TLS sessions stay warm.
//
// Like Client, it never calls PostgreSQL and is used from one thread. The abort check (the
// process is being stopped) ends every transfer as Aborted; cancel() ends one, unreported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "http/http_types.hpp"

namespace celaest::http {

class TransferStream {
 public:
  using Tag = uint64_t;  // the caller's name for a transfer
  struct Ended {
    Tag tag;
    Response response;
  };

  explicit TransferStream(AbortCheck should_abort);  // throws std::runtime_error if libcurl fails
  ~TransferStream();
  TransferStream(const TransferStream&) = delete;
  TransferStream& operator=(const TransferStream&) = delete;

  // Starts a transfer. One that cannot start (an invalid request) ends at the next drive().
  void start(Tag tag, Request request);
  // Stops a transfer in flight; its end is never reported. False if no such transfer.
  bool cancel(Tag tag);
  // Transfers started and not yet reported.
  size_t in_flight() const;

  // Moves the transfers along: waits at most wait_ms for network activity (0: none) and
  // appends every transfer that ended to `ended`. Returns as soon as something ended, or after
  // the wait. Once the abort check fires, every transfer ends as Aborted.
  void drive(int wait_ms, std::vector<Ended>& ended);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace celaest::http

#include "core/cpp_only.hpp"
