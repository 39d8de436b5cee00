// Small ASCII string helpers shared by the codecs and parsers. ASCII-only on purpose:
// HTTP header names, enum labels and JSON keys are ASCII, and locale-dependent
// functions (tolower, isspace) must not change behaviour inside a server backend.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace celaest::core {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }

std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool icontains(std::string_view haystack, std::string_view needle);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::string_view trim(std::string_view s);
std::string_view rtrim(std::string_view s);
bool is_blank(std::string_view s);

// At most max_bytes of s, cut back to a UTF-8 character boundary, with "..." appended
// when something was dropped. Keeps stored error messages bounded whatever a proxy sends.
std::string truncate_utf8(std::string_view s, std::size_t max_bytes);

// Every occurrence of secret replaced by "***" (no-op for an empty secret). For the glue,
// which knows the key: providers sometimes echo part of it in error messages.
std::string redact(std::string text, std::string_view secret);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
