// Small helpers shared by the client tests.
#pragma once

#include <chrono>
#include <string>

#include "core/headers.hpp"
#include "http/http_types.hpp"
#include "local_server.hpp"

namespace celaest::http::test {

using core::find_header;

inline Request make_request(const std::string& path, const std::string& method = "GET") {
  Request request;
  request.method = method;
  request.url = server().url(path);
  request.limits.timeout_ms = 10000;
  return request;
}

inline const AbortCheck kNeverAbort = [] { return false; };

inline long ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
}

// An abort check that starts answering "true" `after` from its creation, and remembers
// when that moment was: the abort latency is measured from it.
class AbortAfter {
 public:
  explicit AbortAfter(std::chrono::milliseconds after) : deadline_(std::chrono::steady_clock::now() + after) {}
  AbortCheck check() {
    return [this] { return std::chrono::steady_clock::now() >= deadline_; };
  }
  long ms_since_deadline() const { return ms_since(deadline_); }

 private:
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace celaest::http::test
