// Text in a fixed array, for slots that live in shared memory (no pointer may be kept there).
// Longer text is cut to Capacity - 1 bytes; the ids kept this way (uuid text, 36 bytes) fit.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>


namespace celaest::core {

template <std::size_t Capacity>
struct FixedText {
  static_assert(Capacity > 0);
  char bytes[Capacity];  // NUL-terminated; all zero is the empty text

  void assign(std::string_view text) noexcept {
    const std::size_t length = text.size() < Capacity - 1 ? text.size() : Capacity - 1;
    if (length > 0) std::memcpy(bytes, text.data(), length);
    std::memset(bytes + length, 0, Capacity - length);
  }
  std::string_view view() const noexcept { return std::string_view(bytes, ::strnlen(bytes, Capacity)); }
  const char* c_str() const noexcept { return bytes; }
  bool empty() const noexcept { return bytes[0] == '\0'; }
  bool operator==(std::string_view text) const noexcept { return view() == text; }
  bool operator!=(std::string_view text) const noexcept { return view() != text; }
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
