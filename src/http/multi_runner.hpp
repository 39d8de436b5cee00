// Runs a batch of requests on one libcurl multi handle, at most max_parallel at a time,
// waking every few milliseconds to ask the abort probe.
//
// perform() goes through here too, with a batch of one: in easy mode libcurl calls the
// progress callback only about once a second while a server sends nothing, which would let
// a hanging provider hold a cancelled query for a second or more.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <vector>

#include "http/abort_probe.hpp"
#include "http/http_types.hpp"

namespace celaest::http {

// The longest we sit in curl_multi_poll before asking the probe again: the bound on abort
// latency when the wire is silent.
inline constexpr int kPollIntervalMs = 20;

struct MultiContext {
  CURLM* multi;
  CURLSH* share;                    // may be null
  std::vector<CURL*>& idle_easies;  // at least min(count, max_parallel) handles; all are back on return
};

// Fills responses[i] for requests[i], i < count. Never leaves a handle attached to the
// multi, whatever happens (including an exception from an allocation).
void run_batch(const MultiContext& context, const Request* requests, Response* responses, size_t count,
               size_t max_parallel, AbortProbe& probe);

}  // namespace celaest::http

#include "core/cpp_only.hpp"
