#include "http/request_check.hpp"

#include <string_view>

#include "core/cpp_only.hpp"

namespace celaest::http {

namespace {

// RFC 9110 "tchar": what a method or a header name may be made of.
bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char c : text) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool has_control_break(std::string_view text) noexcept {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> invalid_reason(const Request& request) {
  if (request.url.empty()) return std::string("empty URL");
  if (has_control_break(request.url)) return std::string("URL contains a line break or NUL");
  if (!is_token(request.method)) return std::string("invalid HTTP method");
  for (size_t i = 0; i < request.headers.size(); ++i) {
    const Header& header = request.headers[i];
    if (!is_token(header.name) || has_control_break(header.value)) {
      return "request header #" + std::to_string(i + 1) + " is malformed";
    }
  }
  return std::nullopt;
}

}  // namespace celaest::http
