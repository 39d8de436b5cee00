// The options of run_prompt / ai_chat / submit_batch (API.md "Options understood by both"),
// parsed and validated once, before anything is spent.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace celaest::core {

struct CallOptions {
  std::optional<std::string> model;     // an ai_models.model_id
  std::optional<std::string> provider;  // an ai_provider label
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::optional<double> top_p;
  bool json_mode = false;
  std::optional<long> timeout_ms;
  std::optional<std::string> request_id;
  bool raise_on_failure = false;
  // Falling back to another model (API.md "Routing and failover"): `fallback` as given (nullopt:
  // the default, which depends on whether a model was named), `fallback_models` tried in order.
  std::optional<bool> fallback;
  std::vector<std::string> fallback_models;  // ai_models.model_id
};

// Whether the call falls back automatically through the other active models of its capability:
// the caller's `fallback`, else true exactly when the caller named no model.
bool falls_back_automatically(const CallOptions& options);

// A bad option: the message names the option and the offending value.
class InvalidOption : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// `options` must be a JSON object (or null). Unknown keys are ignored (forward compatible);
// known keys with a wrong type or range throw InvalidOption. Booleans accept true/false and
// the strings "true"/"false" (SQL callers often build options with ->> text).
CallOptions parse_call_options(const nlohmann::json& options);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
