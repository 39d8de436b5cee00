#include "core/template.hpp"

#include <algorithm>
#include <unordered_set>

#include "core/text.hpp"

namespace celaest::core {
namespace {

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || ascii_digit(c) || c == '_' || c == '.' || c == '-';
}

bool is_name(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_name_char); }

const nlohmann::json* lookup(const nlohmann::json& vars, const std::string& name) {
  if (!vars.is_object()) return nullptr;
  if (auto it = vars.find(name); it != vars.end()) return &*it;
  // Dotted path: a.b.c walks nested objects.
  const nlohmann::json* node = &vars;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    if (!node->is_object()) return nullptr;
    auto it = node->find(name.substr(start, dot - start));
    if (it == node->end()) return nullptr;
    node = &*it;
    start = dot + 1;
  }
  return node;
}

void append_value(std::string& out, const nlohmann::json& value) {
  if (value.is_string()) {
    out += value.get_ref<const std::string&>();
  } else if (!value.is_null()) {
    out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

// The last character of `span` that can be neither part of a name nor the blanks around
// it, or npos.
std::size_t last_impossible_char(std::string_view span) {
  for (std::size_t i = span.size(); i-- > 0;) {
    if (!is_name_char(span[i]) && !ascii_space(span[i])) return i;
  }
  return std::string_view::npos;
}

}  // namespace

RenderResult render_template(std::string_view tpl, const nlohmann::json& vars) {
  RenderResult result;
  result.text.reserve(tpl.size());
  std::unordered_set<std::string> missing_seen;  // so that many distinct names stay linear
  std::size_t pos = 0;
  std::size_t search_from = 0;  // where the next "{{" can start; never before pos
  while (pos < tpl.size()) {
    const std::size_t open = tpl.find("{{", std::max(pos, search_from));
    if (open == std::string_view::npos) break;
    result.text.append(tpl.substr(pos, open - pos));
    const std::size_t close = tpl.find("}}", open + 2);
    if (close == std::string_view::npos) {
      pos = open;  // no closing braces anywhere after: the rest is literal
      break;
    }
    const std::string name(trim(tpl.substr(open + 2, close - open - 2)));
    if (!is_name(name)) {
      // Not a placeholder: keep one brace and rescan, so "{{{x}}}" still finds "{{x}}".
      result.text += '{';
      pos = open + 1;
      // Every "{{" that starts before the span's last impossible character shares this
      // "}}" and still contains that character: none is a placeholder. Skipping them keeps
      // a template of many "{{" linear (it was quadratic: 600 kB took seconds).
      const std::size_t bad = last_impossible_char(tpl.substr(open + 2, close - open - 2));
      if (bad != std::string_view::npos) search_from = open + 2 + bad - 1;
      continue;
    }
    if (const nlohmann::json* value = lookup(vars, name)) {
      append_value(result.text, *value);
    } else {
      result.text.append(tpl.substr(open, close + 2 - open));
      if (missing_seen.insert(name).second) result.missing.push_back(name);
    }
    pos = close + 2;
  }
  if (pos < tpl.size()) result.text.append(tpl.substr(pos));
  return result;
}

}  // namespace celaest::core
