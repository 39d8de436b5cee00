// One request's life on a libcurl easy handle: options in, callbacks during, Response out.
//
// The object is the callbacks' user pointer, so it never moves while a handle points at it.
// It borrows the easy handle only between attach() and release(); release() resets the
// handle so that an idle handle holds no pointer into a dead Transfer.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <string>

#include "http/abort_probe.hpp"
#include "http/curl_handles.hpp"
#include "http/http_types.hpp"

namespace celaest::http {

class Transfer {
 public:
  Transfer(const Request& request, Response& response, AbortProbe& probe) noexcept
      : request_(request), response_(response), probe_(probe) {}
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Validates the request and sets every option on `easy` (a fresh or reset handle) and
  // starts the clock. False when the request cannot be sent: the response is then already
  // complete (TransportError::Other) and the handle was not kept.
  bool attach(CURL* easy, CURLSH* share);

  CURL* easy() const noexcept { return easy_; }

  // Completes the response from libcurl's result code.
  void complete(CURLcode code);
  // Completes the response as Aborted without libcurl's word (the loop stopped it, or it
  // never started).
  void complete_aborted();
  // Completes the response as Other with a text of ours (e.g. the multi handle failed).
  void complete_failed(const std::string& text);

  // Resets and returns the borrowed handle (nullptr if none).
  CURL* release() noexcept;

 private:
  static size_t on_body(char* data, size_t size, size_t count, void* self) noexcept;
  static size_t on_header(char* data, size_t size, size_t count, void* self) noexcept;
  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept;

  CURLcode set_options(CURLSH* share);
  CURLcode set_method_and_body();
  bool build_header_list();
  void stop_clock() noexcept;
  // Whether libcurl put any of the request on the wire (CURLINFO_REQUEST_SIZE > 0).
  bool anything_sent() noexcept;
  void note_callback_failure(const char* what) noexcept;

  const Request& request_;
  Response& response_;
  AbortProbe& probe_;
  CURL* easy_ = nullptr;
  HeaderList header_list_;
  HeaderList resolve_list_;  // CURLOPT_RESOLVE's one entry (Request::pinned_address)
  std::chrono::steady_clock::time_point started_{};
  size_t header_bytes_ = 0;
  bool cap_tripped_ = false;   // the body passed max_response_bytes
  bool headers_over_ = false;  // the headers passed their own budget
  const char* callback_failure_ = nullptr;  // a literal: recording it cannot throw
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

}  // namespace celaest::http

#include "core/cpp_only.hpp"
