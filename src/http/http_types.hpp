// Plain data passed between the PostgreSQL glue and the libcurl client.
//
// Deliberately free of libcurl and PostgreSQL types so that the glue can include it after
// postgres.h and the client can be tested without a server.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace celaest::http {

struct Header {
  std::string name, value;
};

struct Request {
  std::string method = "POST";
  std::string url;
  std::vector<Header> headers;  // may hold API keys: never copied into error_text
  std::string body;
  long timeout_ms = 60000;          // whole transfer, connect included; 0 = none (libcurl's meaning)
  long connect_timeout_ms = 10000;  // 0 = libcurl's default (300 s)
  size_t max_response_bytes = 8 << 20;  // decoded body; over it => TransportError::TooLarge
};

enum class TransportError {
  None,     // an HTTP response arrived; look at status
  Timeout,  // timeout_ms or connect_timeout_ms elapsed
  Connect,  // no connection, or it broke before a complete response: worth a retry
  TooLarge, // the body exceeded max_response_bytes
  Aborted,  // should_abort() said so (a query cancel, a terminate)
  Other     // anything else: bad URL, TLS verification, truncated response, ...
};

struct Response {
  long status = 0;              // last HTTP status seen (0 if none); trust it only if error == None
  std::vector<Header> headers;  // the final response's headers only, names as sent
  std::string body;             // decoded (gzip etc.); on TooLarge, what arrived before the cap
  TransportError error = TransportError::None;
  std::string error_text;       // human-readable cause; never contains request headers
  long elapsed_ms = 0;          // from the transfer's start to its end (queueing in perform_many excluded)
  long new_connections = 0;     // connections this transfer opened: 0 means a kept-alive one was reused
};

// Polled from the calling thread while transfers run, at least every 20 ms (more often while
// data flows); true => abort now (TransportError::Aborted). Once it has returned true it is
// not called again within that perform/perform_many. Should not throw; if it does, the
// transfers are aborted.
using AbortCheck = std::function<bool()>;

// A fixed English name for logs and error details ("timeout", "connect", ...).
const char* to_string(TransportError error) noexcept;

}  // namespace celaest::http
