#include "core/uuid_bytes.hpp"

namespace celaest::core {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<UuidBytes> parse_uuid(std::string_view text) {
  const bool canonical = text.size() == 36;
  if (!canonical && text.size() != 32) return std::nullopt;
  UuidBytes bytes{};
  size_t out = 0;
  for (size_t i = 0; i < text.size();) {
    if (canonical && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int high = hex_value(text[i]), low = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
    if (high < 0 || low < 0 || out >= bytes.size()) return std::nullopt;
    bytes[out++] = static_cast<unsigned char>(high * 16 + low);
    i += 2;
  }
  if (out != bytes.size()) return std::nullopt;
  return bytes;
}

}  // namespace celaest::core
