#include "http/error_map.hpp"

#include <string_view>
#include <vector>

#include "core/cpp_only.hpp"

namespace celaest::http {

TransportError classify(CURLcode code, bool cap_tripped) noexcept {
  if (code == CURLE_OK) return TransportError::None;
  if (cap_tripped) return TransportError::TooLarge;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:  // both the total and the connect timeout end here
      return TransportError::Timeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:  // a handshake cut by a reset or an overloaded front end
    case CURLE_HTTP2:              // connection-level h2 failure (GOAWAY, broken framing)
    case CURLE_HTTP2_STREAM:       // the server reset our stream
      return TransportError::Connect;
    case CURLE_ABORTED_BY_CALLBACK:
      return TransportError::Aborted;
    default:  // CURLE_PARTIAL_FILE (truncated body) included: a half response is not a reply
      return TransportError::Other;
  }
}

std::string describe(CURLcode code, TransportError error, const char* curl_detail, size_t max_response_bytes) {
  if (error == TransportError::None) return {};
  if (error == TransportError::TooLarge) {
    return "response exceeds max_response_bytes (" + std::to_string(max_response_bytes) + ")";
  }
  std::string detail = (curl_detail != nullptr && curl_detail[0] != '\0') ? curl_detail : curl_easy_strerror(code);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  if (code == CURLE_PARTIAL_FILE) return "truncated response: " + detail;
  return detail;
}

namespace {

constexpr size_t kMinSecretLength = 8;  // shorter tokens ("Bearer", "1") are not secrets

void add_tokens(std::vector<std::string_view>& secrets, std::string_view text, std::string_view separators) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of(separators, start);
    if (end == std::string_view::npos) end = text.size();
    if (end - start >= kMinSecretLength) secrets.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

void replace_all(std::string& text, std::string_view secret) {
  static constexpr std::string_view kMask = "[redacted]";
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kMask.size())) {
    text.replace(at, secret.size(), kMask);
  }
}

}  // namespace

std::string redact(std::string text, const Request& request) {
  if (text.empty()) return text;
  std::vector<std::string_view> secrets;
  for (const Header& header : request.headers) {
    if (header.value.size() >= 4) secrets.push_back(header.value);
    add_tokens(secrets, header.value, " \t,;=");
  }
  const size_t query = request.url.find('?');
  if (query != std::string::npos) {
    add_tokens(secrets, std::string_view(request.url).substr(query + 1), "&=#");
  }
  for (std::string_view secret : secrets) replace_all(text, secret);
  return text;
}

}  // namespace celaest::http
