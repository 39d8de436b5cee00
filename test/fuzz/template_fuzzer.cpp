// render_template on any template and any variables. Input: the template, then a NUL
// byte, then the variables as JSON (no NUL: an empty object).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/template.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  const size_t nul = input.find('\0');
  const std::string_view tpl = input.substr(0, nul);
  nlohmann::json vars = nlohmann::json::object();
  if (nul != std::string_view::npos) {
    vars = nlohmann::json::parse(input.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (vars.is_discarded()) return 0;
  }
  const core::RenderResult r = core::render_template(tpl, vars);
  // Missing names are unique and each still appears verbatim in the text.
  for (size_t i = 0; i < r.missing.size(); ++i) {
    CELAEST_FUZZ_CHECK(std::count(r.missing.begin(), r.missing.end(), r.missing[i]) == 1);
    CELAEST_FUZZ_CHECK(r.text.find(r.missing[i]) != std::string::npos);
  }
  // Without variables nothing is substituted: the text is the template.
  if (vars.empty()) CELAEST_FUZZ_CHECK(r.text == tpl);
  return 0;
}
