#include "core/json_output.hpp"

#include <algorithm>

#include "core/json_util.hpp"
#include "core/text.hpp"

namespace celaest::core {
namespace {

std::optional<std::string_view> fenced_body(std::string_view text) {
  if (!starts_with(text, "```")) return std::nullopt;
  const std::size_t first_newline = text.find('\n');
  const std::size_t closing = text.rfind("```");
  if (first_newline == std::string_view::npos || closing <= first_newline) return std::nullopt;
  return text.substr(first_newline + 1, closing - first_newline - 1);
}

std::optional<std::string_view> bracketed_span(std::string_view text) {
  const std::size_t open = text.find_first_of("{[");
  if (open == std::string_view::npos) return std::nullopt;
  const char close_char = text[open] == '{' ? '}' : ']';
  const std::size_t close = text.rfind(close_char);
  if (close == std::string_view::npos || close < open) return std::nullopt;
  return text.substr(open, close - open + 1);
}

// The deepest nesting of arrays and objects in a valid JSON text. Exact only for valid
// JSON (string boundaries are trusted), which is why it runs after the parse.
std::size_t nesting_depth(std::string_view json) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::optional<nlohmann::json> parse_bounded(std::string_view text) {
  auto parsed = parse_json(text);
  if (parsed && nesting_depth(text) > kMaxJsonOutputDepth) return std::nullopt;
  return parsed;
}

}  // namespace

std::optional<nlohmann::json> parse_json_output(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (auto whole = parse_bounded(text)) return whole;
  if (auto fenced = fenced_body(text)) {
    if (auto inner = parse_bounded(trim(*fenced))) return inner;
  }
  if (auto span = bracketed_span(text)) {
    if (auto inner = parse_bounded(*span)) return inner;
  }
  return std::nullopt;
}

}  // namespace celaest::core
