#include "http/multi_runner.hpp"

#include <memory>
#include <string>

#include "http/transfer.hpp"
#include "core/cpp_only.hpp"

namespace celaest::http {

namespace {

class Batch {
 public:
  Batch(const MultiContext& context, const Request* requests, Response* responses, size_t count, AbortProbe& probe)
      : context_(context) {
    transfers_.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      transfers_.push_back(std::make_unique<Transfer>(requests[i], responses[i], probe));
    }
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Whatever is still attached (only after an exception) is detached and handed back.
  ~Batch() {
    for (auto& transfer : transfers_) {
      if (transfer->easy() != nullptr) give_back(*transfer);
    }
  }

  void run(size_t max_parallel, AbortProbe& probe);

 private:
  void admit(size_t max_parallel);
  void collect_finished();
  // Ends every transfer not yet complete: attached ones are stopped, queued ones never start.
  template <typename Complete>
  void end_all(Complete complete);

  void give_back(Transfer& transfer) noexcept {
    curl_multi_remove_handle(context_.multi, transfer.easy());
    // Cannot reallocate: the list only ever held this many handles.
    context_.idle_easies.push_back(transfer.release());
  }

  const MultiContext& context_;
  std::vector<std::unique_ptr<Transfer>> transfers_;
  size_t next_ = 0;      // first transfer not yet admitted
  size_t active_ = 0;    // attached to the multi handle
  size_t finished_ = 0;  // response complete
};

void Batch::run(size_t max_parallel, AbortProbe& probe) {
  const size_t count = transfers_.size();
  while (finished_ < count) {
    if (probe.fired()) {
      end_all([](Transfer& transfer) { transfer.complete_aborted(); });
      return;
    }
    admit(max_parallel);
    if (active_ == 0) continue;  // every admitted request was invalid; admit more or finish

    int running = 0;
    CURLMcode result = curl_multi_perform(context_.multi, &running);
    if (result == CURLM_OK) {
      collect_finished();
      if (finished_ == count) return;
      if (active_ < max_parallel && next_ < count) continue;  // a slot opened: fill it first
      result = curl_multi_poll(context_.multi, nullptr, 0, kPollIntervalMs, nullptr);
    }
    if (result != CURLM_OK) {
      const std::string text = std::string("libcurl multi interface failed: ") + curl_multi_strerror(result);
      end_all([&text](Transfer& transfer) { transfer.complete_failed(text); });
      return;
    }
  }
}

void Batch::admit(size_t max_parallel) {
  while (active_ < max_parallel && next_ < transfers_.size()) {
    Transfer& transfer = *transfers_[next_++];
    CURL* easy = context_.idle_easies.back();
    context_.idle_easies.pop_back();
    if (!transfer.attach(easy, context_.share)) {
      context_.idle_easies.push_back(easy);
      ++finished_;
      continue;
    }
    const CURLMcode added = curl_multi_add_handle(context_.multi, easy);
    if (added != CURLM_OK) {
      context_.idle_easies.push_back(transfer.release());
      transfer.complete_failed(std::string("curl_multi_add_handle failed: ") + curl_multi_strerror(added));
      ++finished_;
      continue;
    }
    ++active_;
  }
}

void Batch::collect_finished() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(context_.multi, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    void* owner = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
    Transfer& transfer = *static_cast<Transfer*>(owner);
    transfer.complete(message->data.result);  // before give_back: `message` dies with remove_handle
    give_back(transfer);
    --active_;
    ++finished_;
  }
}

template <typename Complete>
void Batch::end_all(Complete complete) {
  for (size_t i = 0; i < transfers_.size(); ++i) {
    Transfer& transfer = *transfers_[i];
    if (transfer.easy() != nullptr) {
      complete(transfer);
      give_back(transfer);  // a transfer stopped midway closes its connection
    } else if (i >= next_) {
      complete(transfer);
    }
  }
  next_ = transfers_.size();
  active_ = 0;
  finished_ = transfers_.size();
}

}  // namespace

void run_batch(const MultiContext& context, const Request* requests, Response* responses, size_t count,
               size_t max_parallel, AbortProbe& probe) {
  if (count == 0) return;
  Batch batch(context, requests, responses, count, probe);
  batch.run(max_parallel == 0 ? 1 : max_parallel, probe);
}

}  // namespace celaest::http
