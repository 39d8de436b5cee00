#include "http/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <stdexcept>

#include "http/abort_probe.hpp"
#include "http/curl_handles.hpp"
#include "http/multi_runner.hpp"
#include "core/cpp_only.hpp"

namespace celaest::http {

namespace {

// Idle connections kept alive across calls, at least: enough for a handful of provider
// hosts. Left unset, libcurl would size the cache from the handles currently attached,
// which between calls is none.
constexpr long kMinKeptConnections = 16;

}  // namespace

// Every transfer, perform() and perform_many() alike, runs on the one multi handle, so they
// all draw on its connection cache and DNS cache: a connection opened by perform_many() is
// reused by the next perform() and the other way round. The easy handles are pooled too
// (libcurl keeps per-handle state warm), and a share object pools TLS sessions so that a
// new connection to a known host resumes its session instead of a full handshake.
// Members are destroyed in reverse order: easy handles first (they reference the share),
// then the multi handle (closing cached connections), then the share.
struct Client::Impl {
  ShareHandle share;
  MultiHandle multi;
  std::vector<EasyHandle> easies;
  long kept_connections = 0;

  Impl() {
    share.reset(curl_share_init());
    multi.reset(curl_multi_init());
    if (!share || !multi) throw std::runtime_error("libcurl: cannot create multi/share handles");
    if (curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
      throw std::runtime_error("libcurl: cannot share TLS sessions");
    }
    // HTTP/2 streams share a connection (libcurl's default since 7.62, stated: the runner's
    // throughput with an HTTPS provider rests on it).
    if (curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX)) != CURLM_OK)
      throw std::runtime_error("libcurl: cannot multiplex");
    keep_connections(kMinKeptConnections);
  }

  // Room in the connection cache for a whole batch, so the next batch finds them all.
  void keep_connections(long count) {
    if (count <= kept_connections) return;
    if (curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, count) == CURLM_OK) kept_connections = count;
  }

  // Raw pointers to at least `count` idle easy handles (all of them are idle between calls).
  std::vector<CURL*> lend(size_t count) {
    while (easies.size() < count) {
      EasyHandle easy(curl_easy_init());
      if (!easy) throw std::runtime_error("libcurl: cannot create an easy handle");
      easies.push_back(std::move(easy));
    }
    std::vector<CURL*> idle;
    idle.reserve(easies.size());
    for (const EasyHandle& easy : easies) idle.push_back(easy.get());
    return idle;
  }
};

Client::Client() {
  global_init_once();
  impl_ = std::make_unique<Impl>();
}

Client::~Client() = default;

Response Client::perform(const Request& request, const AbortCheck& should_abort) {
  Response response;
  AbortProbe probe(should_abort);
  std::vector<CURL*> idle = impl_->lend(1);
  run_batch(MultiContext{impl_->multi.get(), impl_->share.get(), idle}, &request, &response, 1, 1, probe);
  return response;
}

std::vector<Response> Client::perform_many(const std::vector<Request>& requests, size_t max_parallel,
                                           const AbortCheck& should_abort) {
  std::vector<Response> responses(requests.size());
  if (requests.empty()) return responses;
  const size_t parallel = std::clamp<size_t>(max_parallel, 1, requests.size());
  impl_->keep_connections(static_cast<long>(parallel));
  AbortProbe probe(should_abort);
  std::vector<CURL*> idle = impl_->lend(parallel);
  run_batch(MultiContext{impl_->multi.get(), impl_->share.get(), idle}, requests.data(), responses.data(),
            requests.size(), parallel, probe);
  return responses;
}

}  // namespace celaest::http
