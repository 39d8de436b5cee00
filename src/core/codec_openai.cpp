#include "core/codec_openai.hpp"

#include "core/failure.hpp"
#include "core/headers.hpp"
#include "core/messages.hpp"
#include "core/retry_hint.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace celaest::core {
namespace {

using OJson = nlohmann::ordered_json;

void add_bearer(HttpRequest& req, std::string_view api_key) {
  // No key, no header: OpenAI-compatible local servers run without one.
  if (!api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + std::string(api_key)});
}

// content is a string, null (tool calls, refusals), or an array of typed parts.
std::string content_text(const Json& message) {
  const Json* content = member(message, "content");
  if (content == nullptr) return {};
  if (content->is_string()) return content->get<std::string>();
  std::string text;
  if (content->is_array()) {
    for (const auto& part : *content) {
      const std::string type = string_at(part, "type");
      if (type.empty() || type == "text" || type == "output_text") text += string_at(part, "text");
    }
  }
  return text;
}

// error.code is a string for OpenAI/Groq, sometimes a number or null elsewhere.
std::string code_text(const Json& error) {
  const Json* code = member(error, "code");
  if (code == nullptr || code->is_null()) return {};
  return code->is_string() ? code->get<std::string>() : code->dump();
}

}  // namespace

bool is_openai_reasoning_model(std::string_view model) {
  for (std::string_view prefix : {"o1", "o3", "o4", "gpt-5"}) {
    if (starts_with(to_lower(model), prefix)) return true;
  }
  return false;
}

HttpRequest OpenAICompatibleCodec::encode_chat(const ChatRequest& request, std::string_view base_url,
                                               std::string_view api_key) const {
  const bool reasoning = provider() == Provider::OpenAI && is_openai_reasoning_model(request.model);
  OJson body;
  body["model"] = request.model;
  OJson messages = OJson::array();
  for (const auto& m : request.messages) messages.push_back({{"role", to_lower(m.role)}, {"content", m.content}});
  // OpenAI 400s in JSON mode unless some message says "json"; DeepSeek and Groq want it too.
  if (request.json_mode && !mentions_json(request.messages)) {
    messages.push_back({{"role", "system"}, {"content", kJsonInstruction}});
  }
  body["messages"] = std::move(messages);
  if (!reasoning) {
    if (request.temperature) body["temperature"] = *request.temperature;
    if (request.top_p) body["top_p"] = *request.top_p;
  }
  if (request.max_tokens) body[reasoning ? "max_completion_tokens" : "max_tokens"] = *request.max_tokens;
  if (request.json_mode) body["response_format"] = {{"type", "json_object"}};

  HttpRequest req = post_json(join_url(base_or_default(base_url), "chat/completions"), dump_body(body));
  add_bearer(req, api_key);
  return req;
}

HttpRequest OpenAICompatibleCodec::encode_health_check(std::string_view base_url, std::string_view api_key) const {
  HttpRequest req = get(join_url(base_or_default(base_url), "models"));
  add_bearer(req, api_key);
  return req;
}

void OpenAICompatibleCodec::read_success(const Json& body, const HttpResponse& response, const ChatRequest&,
                                         ChatResult& r) const {
  // OpenAI and Groq send x-request-id; DeepSeek's header is unconfirmed, so fall back to
  // the body's completion id, which is what its support asks for.
  auto header_id = find_header(response.headers, "x-request-id");
  r.request_id = header_id ? std::string(*header_id) : string_at(body, "id");
  r.provider_model = string_at(body, "model");
  if (const Json* usage = member(body, "usage")) {
    r.tokens_input = count_at(*usage, "prompt_tokens");
    r.tokens_output = count_at(*usage, "completion_tokens");
  }
  const Json* choices = member(body, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    set_failure(r, FailureKind::MalformedResponse);
    r.error_message = "response has no choices";
    return;
  }
  const Json& choice = (*choices)[0];
  r.finish_reason = string_at(choice, "finish_reason");
  const Json* message = member(choice, "message");
  if (message != nullptr) r.text = content_text(*message);

  const std::string refusal = message != nullptr ? string_at(*message, "refusal") : std::string();
  if (!refusal.empty()) {
    set_failure(r, FailureKind::Blocked);
    r.error_message = bounded_message(refusal);
  } else if (r.finish_reason == "content_filter") {
    set_failure(r, FailureKind::Blocked);
    r.error_message = "the output was stopped by the provider's content filter";
  } else if (r.finish_reason == "insufficient_system_resource") {
    // DeepSeek: the reply was cut short for lack of capacity; transient.
    set_failure(r, FailureKind::Overloaded);
    r.error_message = "the provider ran out of capacity (insufficient_system_resource)";
  }
}

void OpenAICompatibleCodec::read_error(const Json* body, const HttpResponse& response, ChatResult& r) const {
  if (auto id = find_header(response.headers, "x-request-id")) r.request_id = std::string(*id);
  std::string type, code;
  if (body != nullptr) {
    const Json* error = member(*body, "error");
    if (error != nullptr && error->is_object()) {
      r.error_message = bounded_message(string_at(*error, "message"));
      type = string_at(*error, "type");
      code = code_text(*error);
    } else if (error != nullptr && error->is_string()) {
      r.error_message = bounded_message(error->get<std::string>());
    } else {
      r.error_message = bounded_message(string_at(*body, "message"));
    }
  }
  if (code == "insufficient_quota" || type == "insufficient_quota" || code == "billing_hard_limit_reached") {
    set_failure(r, FailureKind::Billing);  // a 429 that waiting will not fix
  } else if (code == "invalid_api_key") {
    set_failure(r, FailureKind::Auth);
  } else if (code == "model_not_found" || code == "model_decommissioned") {
    set_failure(r, FailureKind::NotFound);
  } else if (code == "json_validate_failed") {
    set_failure(r, FailureKind::BadRequest, error_code::kInvalidJsonOutput);  // Groq: the model missed
  }
  if (r.failure == FailureKind::RateLimited && !r.retry_after_ms) r.retry_after_ms = rate_limit_reset_ms(response.headers);
}

}  // namespace celaest::core
