// Prompts from prompts_master: `slug` (its active default version) or `slug@version`,
// rendered with {{variables}} into the messages of a call.
#pragma once

#include <nlohmann/json.hpp>

#include "core/chat.hpp"

#include "pg/boundary/spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace celaest::pg {

struct PromptDefinition {
  std::string id;
  std::string slug;
  int version = 1;
  std::string system_prompt;
  std::optional<std::string> user_template;
  nlohmann::json declared_variables = nlohmann::json::array();
  std::optional<std::string> preferred_model_id;
  double temperature = 0.7;
  int max_tokens = 2048;
  double top_p = 1.0;
};

// 22023 for a malformed reference or an unknown prompt.
PromptDefinition load_prompt(SpiSession& spi, const std::string& reference);

struct RenderedPrompt {
  std::vector<core::ChatMessage> messages;
  std::string user_text;  // what goes into processed_tasks.input_text
};

// LC030 naming every missing variable (in the templates or declared by the prompt).
RenderedPrompt render_prompt(const PromptDefinition& prompt, const nlohmann::json& variables);

}  // namespace celaest::pg
