// How a fuzz input becomes the values the core reads. One readable format for the seed
// corpus: an HTTP response as a provider sends it, minus the protocol word —
//
//   429 Too Many Requests        <- status line: three digits, the reason is ignored
//   retry-after: 3               <- "name: value" header lines, up to an empty line
//
//   {"error": {...}}             <- the rest, byte for byte, is the body
//
// Input that does not start with a status line is a 200 whose body is the whole input, so
// the fuzzer can also work on bare bodies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/chat.hpp"

namespace celaest::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The next line of `rest` without its "\n" or "\r\n"; `rest` moves past it.
inline std::string_view take_line(std::string_view& rest) {
  const size_t end = rest.find('\n');
  std::string_view line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The headers part only: "name: value" lines up to an empty line or the end.
inline std::vector<core::Header> parse_headers(std::string_view& rest) {
  std::vector<core::Header> headers;
  while (!rest.empty()) {
    const std::string_view line = take_line(rest);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      headers.push_back({std::string(line), std::string()});
    } else {
      std::string_view value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
    }
  }
  return headers;
}

inline core::HttpResponse parse_response(std::string_view input) {
  core::HttpResponse response;
  const bool has_status = input.size() >= 3 && is_digit(input[0]) && is_digit(input[1]) && is_digit(input[2]) &&
                          (input.size() == 3 || input[3] == ' ' || input[3] == '\r' || input[3] == '\n');
  if (!has_status) {
    response.status = 200;
    response.body = std::string(input);
    return response;
  }
  response.status = (input[0] - '0') * 100 + (input[1] - '0') * 10 + (input[2] - '0');
  std::string_view rest = input;
  take_line(rest);
  response.headers = parse_headers(rest);
  response.body = std::string(rest);
  return response;
}

// A failed check is a crash the fuzzer reports with the input that caused it.
#define CELAEST_FUZZ_CHECK(condition) \
  do {                                \
    if (!(condition)) __builtin_trap(); \
  } while (0)

}  // namespace celaest::fuzz
