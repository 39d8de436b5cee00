// The HTTP client a backend uses to call AI providers.
//
// One Client per backend, created lazily and kept for the backend's life, so that kept-alive
// connections (and their TLS sessions) survive from one SQL call to the next. Call it only
// from the backend's own thread. It never calls PostgreSQL: the caller's AbortCheck reads
// the interrupt flags, and the interrupt itself is served by the caller once perform() has
// returned and the C++ objects are gone.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "http/headers.hpp"
#include "http/http_types.hpp"

namespace celaest::http {

class Client {
 public:
  Client();  // throws std::runtime_error if libcurl cannot be initialised
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request and waits for its response, the timeout, or should_abort().
  // Transport failures are reported in Response::error, not thrown.
  Response perform(const Request& request, const AbortCheck& should_abort);

  // Sends all requests, at most max_parallel (0 counts as 1) at a time, and returns their
  // responses in input order. When should_abort() fires, transfers in flight are stopped
  // and those not yet started are not sent; all of them report TransportError::Aborted.
  std::vector<Response> perform_many(const std::vector<Request>& requests, size_t max_parallel,
                                     const AbortCheck& should_abort);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// curl_global_init, once per process; Client() calls it too. Call it in the backend, not
// in the postmaster: a Client must never be shared across fork().
// Throws std::runtime_error if libcurl cannot be initialised.
void global_init_once();

}  // namespace celaest::http

#include "core/cpp_only.hpp"
