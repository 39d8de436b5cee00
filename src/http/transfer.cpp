#include "http/transfer.hpp"

#include <new>
#include <string_view>

#include "http/error_map.hpp"
#include "http/headers.hpp"
#include "core/text.hpp"
#include "http/request_check.hpp"
#include "core/cpp_only.hpp"

namespace celaest::http {

namespace {

constexpr const char* kUserAgent = "celaest/0.1";

// TCP keepalive probes keep NATs and load balancers from dropping a connection while a
// model thinks for a minute without sending a byte.
constexpr long kKeepIdleSeconds = 30;
constexpr long kKeepIntervalSeconds = 15;

// Headers get a budget of their own, apart from max_response_bytes (a small body cap must
// not reject ordinary headers). It sits below libcurl's own limit (300 kB since 7.83), which
// would report a receive error (retryable) where a header flood deserves TooLarge (final).
constexpr size_t kMaxHeaderBytes = 256 << 10;

}  // namespace

bool Transfer::attach(CURL* easy, CURLSH* share) {
  if (auto reason = invalid_reason(request_)) {
    complete_failed("invalid request: " + *reason);
    return false;
  }
  easy_ = easy;
  if (!build_header_list()) {
    release();
    complete_failed("out of memory while building request headers");
    return false;
  }
  const CURLcode result = set_options(share);
  if (result != CURLE_OK) {
    release();
    // Names the failed setting's error only: the values may be secrets.
    complete_failed(std::string("could not set up the request: ") + curl_easy_strerror(result));
    return false;
  }
  started_ = std::chrono::steady_clock::now();
  return true;
}

bool Transfer::build_header_list() {
  bool caller_sets_expect = false;
  auto append = [this](const std::string& line) {
    curl_slist* head = curl_slist_append(header_list_.get(), line.c_str());
    if (head == nullptr) return false;
    (void)header_list_.release();  // same list, possibly a new head: keep ownership in one place
    header_list_.reset(head);
    return true;
  };
  for (const Header& header : request_.headers) {
    caller_sets_expect = caller_sets_expect || core::iequals(header.name, "Expect");
    // "Name:" would tell libcurl to drop the header; "Name;" sends it with an empty value.
    if (!append(header.name + (header.value.empty() ? ";" : ": ") + header.value)) return false;
  }
  // An empty Expect: stops libcurl from waiting for "100 Continue" before sending a large
  // body, a round trip that servers answering straight away make us pay for nothing.
  return caller_sets_expect || append("Expect:");
}

CURLcode Transfer::set_options(CURLSH* share) {
  CURLcode result = CURLE_OK;
  auto check = [&result](CURLcode step) {
    if (result == CURLE_OK) result = step;
  };
  CURL* const e = easy_;
  check(curl_easy_setopt(e, CURLOPT_URL, request_.url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the string form; the bitmask form is deprecated
  check(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
#else
  check(curl_easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS)));
#endif
  // A backend has its own signal handlers; libcurl must not install or raise SIGALRM/SIGPIPE.
  check(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
#if LIBCURL_VERSION_NUM >= 0x075700  // 7.87
  // Without it, stopping a transfer (abort or timeout) while the threaded resolver is still
  // in getaddrinfo() joins that thread: a cancel would wait out a slow DNS server. With it
  // the thread is detached and frees itself when the lookup returns.
  check(curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L));
#endif
  check(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));  // a redirect would resend the API key
  check(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
  check(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
  if (!request_.limits.ca_file.empty()) check(curl_easy_setopt(e, CURLOPT_CAINFO, request_.limits.ca_file.c_str()));
  if (request_.url.compare(0, 8, "https://") == 0) {
    // HTTP/2 where the provider offers it (ALPN); over one connection, many calls side by side.
    // PIPEWAIT: a transfer to a host whose connection is still being set up waits to share it
    // rather than opening another, so a batch of 1,000 calls costs a few TLS handshakes, not
    // 1,000 (the multi handle multiplexes; its per-connection stream limit is the server's).
    check(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)));
    check(curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L));
  } else {
    check(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
    check(curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L));
  }
  check(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, request_.limits.timeout_ms));
  check(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, request_.limits.connect_timeout_ms));
  check(curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""));  // every encoding libcurl can decode
  check(curl_easy_setopt(e, CURLOPT_USERAGENT, kUserAgent));
  check(curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_.get()));
  if (!request_.pinned_address.empty()) {
    resolve_list_.reset(curl_slist_append(nullptr, request_.pinned_address.c_str()));
    check(resolve_list_ ? curl_easy_setopt(e, CURLOPT_RESOLVE, resolve_list_.get()) : CURLE_OUT_OF_MEMORY);
  }
  check(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
  check(curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, kKeepIdleSeconds));
  check(curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, kKeepIntervalSeconds));
  check(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_));
  check(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body));
  check(curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header));
  check(curl_easy_setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress));
  check(curl_easy_setopt(e, CURLOPT_XFERINFODATA, static_cast<void*>(this)));
  check(curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L));
  check(curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(this)));
  if (share != nullptr) check(curl_easy_setopt(e, CURLOPT_SHARE, share));
  check(set_method_and_body());
  return result;
}

CURLcode Transfer::set_method_and_body() {
  const std::string& method = request_.method;
  const bool has_body = !request_.body.empty();
  if (method == "GET" && !has_body) return curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
  if (method == "HEAD" && !has_body) return curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  if (method == "POST" || has_body) {
    // The body is sent from the caller's string, not copied: the Request outlives the transfer.
    const auto size = static_cast<curl_off_t>(request_.body.size());
    CURLcode result = curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, size);
    if (result == CURLE_OK) result = curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, request_.body.data());
    if (result != CURLE_OK || method == "POST") return result;
  }
  return curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, method.c_str());
}

bool Transfer::anything_sent() noexcept {
  long request_bytes = 0;
  return easy_ != nullptr && curl_easy_getinfo(easy_, CURLINFO_REQUEST_SIZE, &request_bytes) == CURLE_OK &&
         request_bytes > 0;
}

void Transfer::complete(CURLcode code) {
  stop_clock();
  long status = 0;
  long connects = 0;
  if (easy_ != nullptr) {
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &connects);
  }
  response_.status = status;
  response_.new_connections = connects;
  response_.request_sent = code == CURLE_OK || anything_sent();
  if (code != CURLE_OK && callback_failure_ != nullptr) {
    response_.error = TransportError::Other;
    response_.error_text = callback_failure_;
    return;
  }
  response_.error = classify(code, cap_tripped_ || headers_over_);
  if (response_.error == TransportError::Aborted) {
    response_.error_text = probe_.reason();
  } else if (headers_over_) {
    response_.error_text = "response headers exceed " + std::to_string(kMaxHeaderBytes) + " bytes";
  } else {
    const std::string text = describe(code, response_.error, error_buffer_, request_.limits.max_response_bytes);
    response_.error_text = redact(text, request_);
  }
}

void Transfer::complete_aborted() {
  stop_clock();
  response_.request_sent = anything_sent();
  response_.error = TransportError::Aborted;
  response_.error_text = easy_ != nullptr ? probe_.reason() : "aborted before the transfer started";
}

void Transfer::complete_failed(const std::string& text) {
  stop_clock();
  response_.request_sent = anything_sent();
  response_.error = TransportError::Other;
  response_.error_text = redact(text, request_);
}

CURL* Transfer::release() noexcept {
  CURL* easy = easy_;
  if (easy != nullptr) curl_easy_reset(easy);  // before the header list it points to goes
  header_list_.reset();
  resolve_list_.reset();
  easy_ = nullptr;
  return easy;
}

void Transfer::stop_clock() noexcept {
  if (started_ == std::chrono::steady_clock::time_point{}) return;
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  response_.elapsed_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
}

void Transfer::note_callback_failure(const char* what) noexcept {
  if (callback_failure_ == nullptr) callback_failure_ = what;
}

// --- libcurl callbacks: noexcept, and every failure becomes "return the abort code". ---

size_t Transfer::on_body(char* data, size_t size, size_t count, void* self) noexcept {
  auto* transfer = static_cast<Transfer*>(self);
  const size_t bytes = size * count;
  try {
    std::string& body = transfer->response_.body;
    if (bytes > transfer->request_.limits.max_response_bytes - body.size()) {  // body.size() <= cap always
      transfer->cap_tripped_ = true;
      return 0;  // short write: libcurl stops with CURLE_WRITE_ERROR
    }
    body.append(data, bytes);
    return bytes;
  } catch (const std::bad_alloc&) {
    transfer->note_callback_failure("out of memory while receiving the response");
  } catch (...) {
    transfer->note_callback_failure("internal error while receiving the response");
  }
  return 0;
}

size_t Transfer::on_header(char* data, size_t size, size_t count, void* self) noexcept {
  auto* transfer = static_cast<Transfer*>(self);
  const size_t bytes = size * count;
  try {
    transfer->header_bytes_ += bytes;
    if (transfer->header_bytes_ > kMaxHeaderBytes) {
      transfer->headers_over_ = true;
      return 0;
    }
    add_header_line(transfer->response_.headers, std::string_view(data, bytes));
    return bytes;
  } catch (const std::bad_alloc&) {
    transfer->note_callback_failure("out of memory while receiving response headers");
  } catch (...) {
    transfer->note_callback_failure("internal error while receiving response headers");
  }
  return 0;
}

int Transfer::on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
  // Any non-zero value makes libcurl stop with CURLE_ABORTED_BY_CALLBACK.
  return static_cast<Transfer*>(self)->probe_.fired() ? 1 : 0;
}

}  // namespace celaest::http
