#include "core/codec_anthropic.hpp"

#include <algorithm>

#include "core/failure.hpp"
#include "core/headers.hpp"
#include "core/messages.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace celaest::core {
namespace {

using OJson = nlohmann::ordered_json;

void add_auth(HttpRequest& req, std::string_view api_key) {
  req.headers.push_back({"x-api-key", std::string(api_key)});
  req.headers.push_back({"anthropic-version", std::string(AnthropicCodec::kApiVersion)});
}

struct TypeRule {
  std::string_view type;
  FailureKind kind;
  std::string_view code;
};

// error.type is more specific than the status (e.g. billing_error), so it wins when known.
constexpr TypeRule kTypeRules[] = {
    {"invalid_request_error", FailureKind::BadRequest, {}},
    {"authentication_error", FailureKind::Auth, {}},
    {"billing_error", FailureKind::Billing, {}},
    {"permission_error", FailureKind::Forbidden, {}},
    {"not_found_error", FailureKind::NotFound, {}},
    {"conflict_error", FailureKind::ServerError, error_code::kConflict},
    {"request_too_large", FailureKind::TooLarge, {}},
    {"rate_limit_error", FailureKind::RateLimited, {}},
    {"api_error", FailureKind::ServerError, {}},
    {"timeout_error", FailureKind::Timeout, {}},
    {"overloaded_error", FailureKind::Overloaded, {}},
};

// The spend-limit 429 names itself in details.error_code; look wherever it may sit.
bool spend_limit_reached(const Json& body, const Json& error) {
  for (const Json* holder : {&error, &body}) {
    if (const Json* details = member(*holder, "details")) {
      if (string_at(*details, "error_code") == "enforced_spend_limit_reached") return true;
    }
  }
  return string_at(error, "error_code") == "enforced_spend_limit_reached";
}

}  // namespace

HttpRequest AnthropicCodec::encode_chat(const ChatRequest& request, std::string_view base_url,
                                        std::string_view api_key) const {
  AlternatingChat chat = to_alternating(request.messages);
  // No prefill for JSON mode: Claude 4.6+ rejects a final assistant turn; instruct instead.
  if (request.json_mode) chat.system += (chat.system.empty() ? "" : "\n\n") + std::string(kJsonInstruction);

  OJson body;
  body["model"] = request.model;
  body["max_tokens"] = request.max_tokens.value_or(kDefaultMaxTokens);
  if (!chat.system.empty()) body["system"] = chat.system;
  OJson messages = OJson::array();
  for (const auto& turn : chat.turns) {
    messages.push_back({{"role", turn.assistant ? "assistant" : "user"}, {"content", turn.content}});
  }
  body["messages"] = std::move(messages);
  // Newer models 400 when both are set; temperature is the one callers mean. Range 0..1.
  if (request.temperature) {
    body["temperature"] = std::clamp(*request.temperature, 0.0, 1.0);
  } else if (request.top_p) {
    body["top_p"] = *request.top_p;
  }

  HttpRequest req = post_json(join_url(base_or_default(base_url), "v1/messages"), dump_body(body));
  add_auth(req, api_key);
  return req;
}

HttpRequest AnthropicCodec::encode_health_check(std::string_view base_url, std::string_view api_key) const {
  HttpRequest req = get(join_url(base_or_default(base_url), "v1/models"));
  add_auth(req, api_key);
  return req;
}

void AnthropicCodec::read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                                  ChatResult& r) const {
  if (auto id = find_header(response.headers, "request-id")) r.request_id = std::string(*id);
  r.provider_model = string_at(body, "model");
  r.finish_reason = string_at(body, "stop_reason");
  if (const Json* usage = member(body, "usage")) {
    // Billed input is all three: uncached, written to cache, read from cache.
    r.tokens_input = count_at(*usage, "input_tokens") + count_at(*usage, "cache_creation_input_tokens") +
                     count_at(*usage, "cache_read_input_tokens");
    r.tokens_output = count_at(*usage, "output_tokens");
  }
  const Json* content = member(body, "content");
  if (content == nullptr || !content->is_array()) {
    set_failure(r, FailureKind::MalformedResponse);
    const Json* error = member(body, "error");
    r.error_message = error != nullptr ? bounded_message(string_at(*error, "message")) : "response has no content";
    if (r.error_message.empty()) r.error_message = "response has no content";
    return;
  }
  std::string text;
  for (const auto& block : *content) {
    if (string_at(block, "type") == "text") text += string_at(block, "text");
  }
  // A final assistant turn is a prefill: the reply continues it, so the answer is both.
  const AlternatingChat chat = to_alternating(request.messages);
  r.text = chat.turns.back().assistant ? chat.turns.back().content + text : text;

  if (r.finish_reason == "refusal") {
    set_failure(r, FailureKind::Blocked);
    r.error_message = "the model refused to answer (stop_reason: refusal)";
  }
}

void AnthropicCodec::read_error(const Json* body, const HttpResponse& response, ChatResult& r) const {
  if (body != nullptr) {
    r.request_id = string_at(*body, "request_id");
    const Json* error = member(*body, "error");
    if (error != nullptr && error->is_object()) {
      r.error_message = bounded_message(string_at(*error, "message"));
      const std::string type = string_at(*error, "type");
      for (const auto& rule : kTypeRules) {
        if (rule.type == type) set_failure(r, rule.kind, rule.code);
      }
      // A 400 about credit, or the spend-limit 429: money, not a bad request or a busy server.
      if (spend_limit_reached(*body, *error) ||
          (type == "invalid_request_error" && icontains(r.error_message, "credit balance"))) {
        set_failure(r, FailureKind::Billing);
      }
    }
  }
  if (auto id = find_header(response.headers, "request-id")) r.request_id = std::string(*id);
  // The SDK obeys x-should-retry over the status; so do we.
  if (auto should = find_header(response.headers, "x-should-retry")) {
    if (iequals(*should, "true")) r.retryable = true;
    if (iequals(*should, "false")) r.retryable = false;
  }
}

}  // namespace celaest::core
