// {{variable}} substitution in prompt templates.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace celaest::core {

struct RenderResult {
  std::string text;
  std::vector<std::string> missing;  // referenced but absent from vars; unique, first-seen order
};

// `{{name}}` or `{{ name }}`, name of [A-Za-z0-9_.-]. A name is looked up as a key of
// vars first, then as a dotted path into nested objects ("user.name").
// Values: strings verbatim; null renders empty (present, not missing); numbers, booleans,
// arrays and objects as compact JSON. Missing names stay verbatim in the text. Anything
// that is not a well-formed placeholder is left as written. Values are inserted once:
// a value containing "{{x}}" is not rendered again.
RenderResult render_template(std::string_view tpl, const nlohmann::json& vars);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
