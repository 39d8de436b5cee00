// The HTTP vocabulary of the whole extension, one set of types: the messages a codec builds
// and reads, and the transfer the HTTP client (src/http) performs with them. The client's
// http::Request and http::Response are these types, so nothing converts one into another.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace celaest::core {

// Names as sent or received; look them up with find_header (core/headers.hpp).
struct Header {
  std::string name, value;
};

// What a codec builds.
struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<Header> headers;  // carries the API key: never log these
  std::string body;
};

// What a codec reads.
struct HttpResponse {
  long status = 0;
  std::vector<Header> headers;
  std::string body;
};

// How far one transfer may go. The glue fills it from celaest.http_timeout_ms,
// celaest.http_connect_timeout_ms and celaest.max_response_size, for AI calls and health
// checks alike.
struct TransferLimits {
  long timeout_ms = 60000;              // whole transfer, connect included; 0 = none (libcurl's meaning)
  long connect_timeout_ms = 10000;      // 0 = libcurl's default (300 s)
  size_t max_response_bytes = 8 << 20;  // decoded body; over it => TransportError::TooLarge
  std::string ca_file;                  // PEM bundle of the CAs trusted for https ("" = the system's)
};

// A message on its way out: what to send, and the limits of sending it.
struct TransferRequest : HttpRequest {
  TransferLimits limits;
  // "+host:port:address" (libcurl's CURLOPT_RESOLVE form): the URL's host connects to this
  // address and no other, so that a DNS answer changing after the outbound guard checked it
  // cannot redirect the transfer. Empty: libcurl resolves the host itself.
  std::string pinned_address;
};

enum class TransportError {
  None,     // an HTTP response arrived; look at status
  Timeout,  // timeout_ms or connect_timeout_ms elapsed
  Connect,  // no connection, or it broke before a complete response: worth a retry
  TooLarge, // the body exceeded max_response_bytes
  Aborted,  // the caller's abort check said so (a query cancel, a terminate)
  Other     // anything else: bad URL, TLS verification, truncated response, ...
};

// What came back: the message (status, headers of the final response, decoded body) and how
// the transfer ended. Trust status only when error == None; on TooLarge the body holds what
// arrived before the cap.
struct TransferResponse : HttpResponse {
  TransportError error = TransportError::None;
  std::string error_text;     // human-readable cause; never contains request headers
  long elapsed_ms = 0;        // from the transfer's start to its end (queueing excluded)
  long new_connections = 0;   // connections this transfer opened: 0 means a kept-alive one was reused
  // Whether any of the request went out (false: refused or unreachable before sending, a connect
  // timeout, a transfer never started). A provider can only bill a request that was sent.
  bool request_sent = true;
};

// A fixed English name for logs and error details ("timeout", "connect", ...).
const char* to_string(TransportError error) noexcept;

}  // namespace celaest::core

#include "core/cpp_only.hpp"
