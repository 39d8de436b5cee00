// From a finished libcurl transfer to (TransportError, error_text).
#pragma once

#include <curl/curl.h>

#include <string>

#include "http/http_types.hpp"

namespace celaest::http {

// The classification the retry policy relies on: Timeout and Connect are worth a retry,
// Aborted means "serve the interrupt", TooLarge and Other are final.
// `cap_tripped` is set when our write callback refused data because of max_response_bytes
// (libcurl then reports CURLE_WRITE_ERROR, which by itself says nothing about why).
TransportError classify(CURLcode code, bool cap_tripped) noexcept;

// The text for Response::error_text. `curl_detail` is CURLOPT_ERRORBUFFER's content (may be
// empty). libcurl's messages name hosts, ports and timings, never request headers; redact()
// below is applied on top anyway, because a leaked API key cannot be taken back.
std::string describe(CURLcode code, TransportError error, const char* curl_detail, size_t max_response_bytes);

// Replaces, in `text`, every request header value and every long token inside one
// (the key in "Bearer sk-...") and every long URL query value (Gemini's ?key=) with
// "[redacted]".
std::string redact(std::string text, const Request& request);

}  // namespace celaest::http

#include "core/cpp_only.hpp"
