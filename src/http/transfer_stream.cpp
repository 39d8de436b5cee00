#include "http/transfer_stream.hpp"

#include <curl/curl.h>

#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "http/abort_probe.hpp"
#include "http/client.hpp"
#include "http/curl_handles.hpp"
#include "http/transfer.hpp"
#include "core/cpp_only.hpp"

namespace celaest::http {

namespace {

// Idle connections kept, at least; the cache grows with the most transfers ever in flight,
// so the next batch as wide as the last reuses every connection.
constexpr long kMinKeptConnections = 16;

// One transfer's request, response and libcurl state, at a fixed address (the callbacks'
// user pointer) until it is reported or cancelled.
struct Slot {
  Slot(TransferStream::Tag t, Request r, AbortProbe& probe)
      : tag(t), request(std::move(r)), transfer(request, response, probe) {}
  TransferStream::Tag tag;
  Request request;
  Response response;
  Transfer transfer;
};

}  // namespace

struct TransferStream::Impl {
  AbortCheck should_abort;
  AbortProbe probe;
  ShareHandle share;
  MultiHandle multi;
  std::vector<EasyHandle> easies;  // every handle ever made: the idle ones and those lent out
  std::vector<CURL*> idle;
  std::unordered_map<Tag, std::unique_ptr<Slot>> attached;  // on the multi handle
  std::unordered_map<const Transfer*, Tag> tag_of;          // libcurl names a transfer, we a tag
  std::vector<std::unique_ptr<Slot>> ready;                 // ended before reaching the wire
  long kept_connections = 0;

  explicit Impl(AbortCheck check) : should_abort(std::move(check)), probe(should_abort) {
    share.reset(curl_share_init());
    multi.reset(curl_multi_init());
    if (!share || !multi) throw std::runtime_error("libcurl: cannot create multi/share handles");
    if (curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
      throw std::runtime_error("libcurl: cannot share TLS sessions");
    // HTTP/2 streams share a connection (libcurl's default since 7.62, stated: the runner's
    // throughput with an HTTPS provider rests on it).
    if (curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX)) != CURLM_OK)
      throw std::runtime_error("libcurl: cannot multiplex");
    keep_connections(kMinKeptConnections);
  }

  // Handles are detached before the multi handle is cleaned up (members die in reverse order:
  // the easy handles after the map that borrows them would be too late for the multi).
  ~Impl() {
    for (auto& [tag, slot] : attached) detach(*slot);
    attached.clear();
  }

  void keep_connections(long count) {
    if (count <= kept_connections) return;
    if (curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, count) == CURLM_OK) kept_connections = count;
  }

  CURL* borrow() {
    if (idle.empty()) {
      EasyHandle easy(curl_easy_init());
      if (!easy) throw std::runtime_error("libcurl: cannot create an easy handle");
      idle.reserve(easies.size() + 1);
      idle.push_back(easy.get());
      easies.push_back(std::move(easy));
    }
    CURL* easy = idle.back();
    idle.pop_back();
    return easy;
  }

  // Off the multi handle and back to the idle list; a transfer stopped midway closes its
  // connection.
  void detach(Slot& slot) noexcept {
    CURL* easy = slot.transfer.easy();
    if (easy == nullptr) return;
    curl_multi_remove_handle(multi.get(), easy);
    idle.push_back(slot.transfer.release());  // capacity reserved in borrow(): cannot throw
  }

  void collect(std::vector<Ended>& ended) {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi.get(), &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      void* owner = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
      Transfer& transfer = *static_cast<Transfer*>(owner);
      transfer.complete(message->data.result);  // before detach: `message` dies with remove_handle
      auto tag = tag_of.find(&transfer);
      if (tag == tag_of.end()) continue;  // cannot happen: every attached transfer is named
      auto slot = attached.find(tag->second);
      tag_of.erase(tag);
      detach(*slot->second);
      ended.push_back(Ended{slot->first, std::move(slot->second->response)});
      attached.erase(slot);
    }
  }

  void end_all(std::vector<Ended>& ended, const std::string* failure) {
    for (auto& [tag, slot] : attached) {
      if (failure) slot->transfer.complete_failed(*failure);
      else slot->transfer.complete_aborted();
      detach(*slot);
      ended.push_back(Ended{tag, std::move(slot->response)});
    }
    attached.clear();
    tag_of.clear();
  }
};

TransferStream::TransferStream(AbortCheck should_abort) {
  global_init_once();
  impl_ = std::make_unique<Impl>(std::move(should_abort));
}

TransferStream::~TransferStream() = default;

void TransferStream::start(Tag tag, Request request) {
  auto slot = std::make_unique<Slot>(tag, std::move(request), impl_->probe);
  CURL* easy = impl_->borrow();
  if (!slot->transfer.attach(easy, impl_->share.get())) {
    impl_->idle.push_back(easy);
    impl_->ready.push_back(std::move(slot));
    return;
  }
  const CURLMcode added = curl_multi_add_handle(impl_->multi.get(), easy);
  if (added != CURLM_OK) {
    impl_->idle.push_back(slot->transfer.release());
    slot->transfer.complete_failed(std::string("curl_multi_add_handle failed: ") + curl_multi_strerror(added));
    impl_->ready.push_back(std::move(slot));
    return;
  }
  impl_->tag_of.emplace(&slot->transfer, tag);
  impl_->attached.emplace(tag, std::move(slot));
  impl_->keep_connections(static_cast<long>(impl_->attached.size()));
}

bool TransferStream::cancel(Tag tag) {
  auto found = impl_->attached.find(tag);
  if (found == impl_->attached.end()) return false;
  impl_->detach(*found->second);
  impl_->tag_of.erase(&found->second->transfer);
  impl_->attached.erase(found);
  return true;
}

size_t TransferStream::in_flight() const { return impl_->attached.size() + impl_->ready.size(); }

void TransferStream::drive(int wait_ms, std::vector<Ended>& ended) {
  const size_t before = ended.size();
  for (auto& slot : impl_->ready) ended.push_back(Ended{slot->tag, std::move(slot->response)});
  impl_->ready.clear();
  if (impl_->attached.empty()) return;
  if (impl_->probe.fired()) return impl_->end_all(ended, nullptr);

  int running = 0;
  CURLMcode result = curl_multi_perform(impl_->multi.get(), &running);
  if (result == CURLM_OK) {
    impl_->collect(ended);
    if (ended.size() > before || wait_ms <= 0 || impl_->attached.empty()) return;
    result = curl_multi_poll(impl_->multi.get(), nullptr, 0, wait_ms, nullptr);
    if (result == CURLM_OK) result = curl_multi_perform(impl_->multi.get(), &running);
    if (result == CURLM_OK) impl_->collect(ended);
  }
  if (impl_->probe.fired()) return impl_->end_all(ended, nullptr);
  if (result != CURLM_OK) {
    const std::string text = std::string("libcurl multi interface failed: ") + curl_multi_strerror(result);
    impl_->end_all(ended, &text);
  }
}

}  // namespace celaest::http
