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

std::optional<std::string> canonical_uuid_text(std::string_view text) {
  if (!text.empty() && text.front() == '{') {
    if (text.size() < 2 || text.back() != '}') return std::nullopt;
    text = text.substr(1, text.size() - 2);
  }
  std::string hex;
  size_t i = 0;
  for (int group = 0; group < 8; ++group) {
    if (group > 0 && i < text.size() && text[i] == '-') ++i;
    for (int digit = 0; digit < 4; ++digit, ++i) {
      const int value = i < text.size() ? hex_value(text[i]) : -1;
      if (value < 0) return std::nullopt;
      hex.push_back("0123456789abcdef"[value]);
    }
  }
  if (i != text.size()) return std::nullopt;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20, 12);
}

}  // namespace celaest::core
