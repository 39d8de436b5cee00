#include "core/template.hpp"

#include "pg/ai/prompt_source.hpp"

#include "pg/boundary/boundary.hpp"

#include <algorithm>
#include <cctype>

namespace celaest::pg {

PromptDefinition load_prompt(SpiSession& spi, const std::string& reference) {
  std::string slug = reference;
  std::optional<std::string> version;
  if (auto at = reference.rfind('@'); at != std::string::npos) {
    slug = reference.substr(0, at);
    version = reference.substr(at + 1);
    bool numeric = !version->empty() && version->size() <= 9 &&
                   std::all_of(version->begin(), version->end(), [](unsigned char c) { return std::isdigit(c); });
    if (!numeric || slug.empty())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid prompt reference \"" + reference + "\"", "",
                  "Use a slug, or slug@version with a numeric version.");
  }
  // Without a version: the active default version, else the newest active one.
  QueryResult rows = spi.run(
      "SELECT id, slug, version, system_prompt, user_prompt_template, variables::text,"
      "       preferred_model_id, temperature::float8, max_tokens, top_p::float8"
      " FROM celaest.prompts_master"
      " WHERE slug = $1 AND is_active AND ($2 IS NULL OR version = $2::int)"
      " ORDER BY ($2 IS NULL AND is_default) DESC, version DESC LIMIT 1",
      {slug, version}, true);
  if (rows.empty())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown prompt \"" + reference + "\"",
                "No active row of celaest.prompts_master has this slug" + std::string(version ? " and version." : "."));
  const Row& row = rows.rows[0];
  PromptDefinition prompt;
  prompt.id = *row[0];
  prompt.slug = *row[1];
  prompt.version = std::stoi(*row[2]);
  prompt.system_prompt = row[3].value_or("");
  prompt.user_template = row[4];
  prompt.declared_variables = nlohmann::json::parse(row[5].value_or("[]"));
  prompt.preferred_model_id = row[6];
  prompt.temperature = std::stod(row[7].value_or("0.7"));
  prompt.max_tokens = std::stoi(row[8].value_or("2048"));
  prompt.top_p = std::stod(row[9].value_or("1"));
  return prompt;
}

RenderedPrompt render_prompt(const PromptDefinition& prompt, const nlohmann::json& variables) {
  std::vector<std::string> missing;
  auto note_missing = [&](const std::vector<std::string>& names) {
    for (const auto& name : names)
      if (std::find(missing.begin(), missing.end(), name) == missing.end()) missing.push_back(name);
  };
  core::RenderResult system = core::render_template(prompt.system_prompt, variables);
  note_missing(system.missing);
  RenderedPrompt rendered;
  if (prompt.user_template) {
    core::RenderResult user = core::render_template(*prompt.user_template, variables);
    note_missing(user.missing);
    rendered.user_text = user.text;
  } else if (variables.contains("input") && variables["input"].is_string()) {
    rendered.user_text = variables["input"].get<std::string>();
  } else {
    rendered.user_text = variables.dump();
  }
  if (prompt.declared_variables.is_array())
    for (const auto& declared : prompt.declared_variables)
      if (declared.is_string() && !variables.contains(declared.get<std::string>()))
        note_missing({declared.get<std::string>()});
  if (!missing.empty()) {
    std::string names;
    for (const auto& name : missing) names += (names.empty() ? "" : ", ") + name;
    throw Error(kTemplateVariableMissing,
                "prompt \"" + prompt.slug + "@" + std::to_string(prompt.version) + "\" is missing variable" +
                    (missing.size() > 1 ? "s " : " ") + names,
                "Provided: " + variables.dump(), "Pass every {{variable}} in p_variables.");
  }
  if (!system.text.empty()) rendered.messages.push_back({"system", system.text});
  rendered.messages.push_back({"user", rendered.user_text});
  return rendered;
}

}  // namespace celaest::pg
