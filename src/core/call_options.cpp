#include "core/call_options.hpp"

#include <cmath>

namespace celaest::core {

namespace {

[[noreturn]] void reject(const std::string& key, const nlohmann::json& value, const char* expected) {
  throw InvalidOption("invalid option \"" + key + "\": " + value.dump() + " (expected " + expected + ")");
}

bool as_bool(const std::string& key, const nlohmann::json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "true") return true;
    if (text == "false") return false;
  }
  reject(key, value, "true or false");
}

double as_number(const std::string& key, const nlohmann::json& value, double low, double high) {
  double number = 0;
  if (value.is_number()) {
    number = value.get<double>();
  } else if (value.is_string()) {
    try {
      size_t used = 0;
      number = std::stod(value.get<std::string>(), &used);
      if (used != value.get_ref<const std::string&>().size()) reject(key, value, "a number");
    } catch (const std::logic_error&) {
      reject(key, value, "a number");
    }
  } else {
    reject(key, value, "a number");
  }
  if (!std::isfinite(number) || number < low || number > high) {
    std::string range = "a number between " + nlohmann::json(low).dump() + " and " + nlohmann::json(high).dump();
    reject(key, value, range.c_str());
  }
  return number;
}

long as_positive_integer(const std::string& key, const nlohmann::json& value, long high) {
  double number = as_number(key, value, 1, static_cast<double>(high));
  if (number != std::floor(number)) reject(key, value, "a positive integer");
  return static_cast<long>(number);
}

std::string as_text(const std::string& key, const nlohmann::json& value, size_t max_length) {
  if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
      value.get_ref<const std::string&>().size() > max_length)
    reject(key, value, "a non-empty string");
  return value.get<std::string>();
}

std::vector<std::string> as_model_list(const std::string& key, const nlohmann::json& value) {
  constexpr size_t kMaxFallbackModels = 32;
  if (!value.is_array() || value.size() > kMaxFallbackModels) reject(key, value, "an array of model ids");
  std::vector<std::string> models;
  for (const auto& item : value) models.push_back(as_text(key, item, 100));
  return models;
}

}  // namespace

bool falls_back_automatically(const CallOptions& options) { return options.fallback.value_or(!options.model); }

CallOptions parse_call_options(const nlohmann::json& options) {
  CallOptions parsed;
  if (options.is_null()) return parsed;
  if (!options.is_object()) throw InvalidOption("options must be a JSON object, got " + options.dump());
  for (const auto& [key, value] : options.items()) {
    if (value.is_null()) continue;  // an explicit null means "not given"
    if (key == "model") parsed.model = as_text(key, value, 100);
    else if (key == "provider") parsed.provider = as_text(key, value, 20);
    else if (key == "temperature") parsed.temperature = as_number(key, value, 0, 2);
    else if (key == "top_p") parsed.top_p = as_number(key, value, 0, 1);
    else if (key == "max_tokens") parsed.max_tokens = static_cast<int>(as_positive_integer(key, value, 1'000'000));
    else if (key == "json") parsed.json_mode = as_bool(key, value);
    else if (key == "timeout_ms") parsed.timeout_ms = as_positive_integer(key, value, 3'600'000);
    else if (key == "request_id") parsed.request_id = as_text(key, value, 100);
    else if (key == "raise") parsed.raise_on_failure = as_bool(key, value);
    else if (key == "fallback") parsed.fallback = as_bool(key, value);
    else if (key == "fallback_models") parsed.fallback_models = as_model_list(key, value);
  }
  return parsed;
}

}  // namespace celaest::core
