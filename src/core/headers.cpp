#include "core/headers.hpp"

#include "core/text.hpp"

namespace celaest::core {

std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (iequals(it->name, name)) return trim(it->value);
  }
  return std::nullopt;
}

}  // namespace celaest::core
