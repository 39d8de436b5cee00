#include "http/headers.hpp"

#include "http/pure_cpp.hpp"

namespace celaest::http {

namespace {

constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view trim(std::string_view text) noexcept {
  const size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (iequals(it->name, name)) return std::string_view(it->value);
  }
  return std::nullopt;
}

void add_header_line(std::vector<Header>& headers, std::string_view line) {
  if (line.substr(0, 5) == "HTTP/") {
    headers.clear();
    return;
  }
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    const std::string_view continuation = trim(line);
    if (!headers.empty() && !continuation.empty()) {
      headers.back().value.append(" ").append(continuation);
    }
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;  // the blank line ending the block, or junk
  const std::string_view name = trim(line.substr(0, colon));
  if (name.empty()) return;
  headers.push_back(Header{std::string(name), std::string(trim(line.substr(colon + 1)))});
}

}  // namespace celaest::http
