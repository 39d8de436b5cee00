#include <curl/curl.h>

#include <stdexcept>
#include <string>

#include "http/client.hpp"
#include "core/cpp_only.hpp"

namespace celaest::http {

// curl_global_init is not thread-safe and must run before any other libcurl call; a
// function-local static runs it exactly once per process. We never call
// curl_global_cleanup: the backend exits with the process, and OpenSSL may still be in use
// by PostgreSQL itself.
void global_init_once() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
}

}  // namespace celaest::http
