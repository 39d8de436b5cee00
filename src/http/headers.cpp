#include "http/headers.hpp"

#include "core/text.hpp"

#include "core/cpp_only.hpp"

namespace celaest::http {

void add_header_line(std::vector<Header>& headers, std::string_view line) {
  if (line.substr(0, 5) == "HTTP/") {
    headers.clear();
    return;
  }
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    const std::string_view continuation = core::trim(line);
    if (!headers.empty() && !continuation.empty()) {
      headers.back().value.append(" ").append(continuation);
    }
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;  // the blank line ending the block, or junk
  const std::string_view name = core::trim(line.substr(0, colon));
  if (name.empty()) return;
  headers.push_back(Header{std::string(name), std::string(core::trim(line.substr(colon + 1)))});
}

}  // namespace celaest::http
