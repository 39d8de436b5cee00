#include "core/headers.hpp"

#include "core/text.hpp"

namespace celaest::core {

std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& header : headers) {
    if (iequals(header.name, name)) return trim(header.value);
  }
  return std::nullopt;
}

}  // namespace celaest::core
