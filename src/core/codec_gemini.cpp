#include "core/codec_gemini.hpp"

#include "core/duration.hpp"
#include "core/failure.hpp"
#include "core/messages.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace celaest::core {
namespace {

using OJson = nlohmann::ordered_json;

void add_auth(HttpRequest& req, std::string_view api_key) {
  // A header, not ?key=: URLs end up in logs and error texts; headers do not.
  req.headers.push_back({"x-goog-api-key", std::string(api_key)});
}

OJson text_parts(const std::string& text) { return OJson::array({{{"text", text}}}); }

// finishReason / blockReason values that mean the provider withheld the answer.
bool is_block_reason(std::string_view reason) {
  for (std::string_view r : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}) {
    if (reason == r) return true;
  }
  return false;
}

struct StatusRule {
  std::string_view status;
  FailureKind kind;
};

// google.rpc codes; FAILED_PRECONDITION is billing or region ("enable billing", "location
// not supported"): the key cannot be used as it stands.
constexpr StatusRule kStatusRules[] = {
    {"INVALID_ARGUMENT", FailureKind::BadRequest}, {"FAILED_PRECONDITION", FailureKind::Billing},
    {"UNAUTHENTICATED", FailureKind::Auth},        {"PERMISSION_DENIED", FailureKind::Forbidden},
    {"NOT_FOUND", FailureKind::NotFound},          {"RESOURCE_EXHAUSTED", FailureKind::RateLimited},
    {"INTERNAL", FailureKind::ServerError},        {"UNAVAILABLE", FailureKind::Overloaded},
    {"DEADLINE_EXCEEDED", FailureKind::Timeout},
};

struct DetailFacts {
  bool bad_key = false;         // ErrorInfo reason API_KEY_INVALID (a 400!), API_KEY_EXPIRED, ...
  bool daily_quota = false;     // QuotaFailure on a per-day quota: retrying today is useless
  std::optional<long> delay_ms; // RetryInfo retryDelay
};

DetailFacts read_details(const Json& error) {
  DetailFacts facts;
  const Json* details = member(error, "details");
  if (details == nullptr || !details->is_array()) return facts;
  for (const auto& d : *details) {
    const std::string type = string_at(d, "@type");
    if (starts_with(string_at(d, "reason"), "API_KEY_")) facts.bad_key = true;
    if (ends_with(type, "google.rpc.RetryInfo")) {
      if (auto ms = parse_duration_ms(string_at(d, "retryDelay"))) facts.delay_ms = ms;
    }
    if (ends_with(type, "google.rpc.QuotaFailure")) {
      if (const Json* violations = member(d, "violations"); violations != nullptr && violations->is_array()) {
        for (const auto& v : *violations) {
          if (icontains(string_at(v, "quotaId"), "PerDay")) facts.daily_quota = true;
        }
      }
    }
  }
  return facts;
}

}  // namespace

std::string gemini_generate_path(std::string_view model) {
  model = trim(model);
  if (starts_with(model, "models/")) model.remove_prefix(7);
  return "models/" + encode_path_segment(model) + ":generateContent";
}

HttpRequest GeminiCodec::encode_chat(const ChatRequest& request, std::string_view base_url,
                                     std::string_view api_key) const {
  const AlternatingChat chat = to_alternating(request.messages);
  OJson body;
  if (!chat.system.empty()) body["systemInstruction"] = {{"parts", text_parts(chat.system)}};
  OJson contents = OJson::array();
  for (const auto& turn : chat.turns) {
    contents.push_back({{"role", turn.assistant ? "model" : "user"}, {"parts", text_parts(turn.content)}});
  }
  body["contents"] = std::move(contents);
  OJson config = OJson::object();
  if (request.temperature) config["temperature"] = *request.temperature;
  if (request.top_p) config["topP"] = *request.top_p;
  if (request.max_tokens) config["maxOutputTokens"] = *request.max_tokens;
  if (request.json_mode) config["responseMimeType"] = "application/json";
  if (!config.empty()) body["generationConfig"] = std::move(config);

  HttpRequest req =
      post_json(join_url(base_or_default(base_url), gemini_generate_path(request.model)), dump_body(body));
  add_auth(req, api_key);
  return req;
}

HttpRequest GeminiCodec::encode_health_check(std::string_view base_url, std::string_view api_key) const {
  HttpRequest req = get(join_url(base_or_default(base_url), "models"));
  add_auth(req, api_key);
  return req;
}

void GeminiCodec::read_success(const Json& body, const HttpResponse&, const ChatRequest&, ChatResult& r) const {
  r.request_id = string_at(body, "responseId");  // Gemini sends no request-id header
  r.provider_model = string_at(body, "modelVersion");
  if (const Json* usage = member(body, "usageMetadata")) {
    // Thinking tokens are billed as output; candidatesTokenCount is absent when zero.
    r.tokens_input = count_at(*usage, "promptTokenCount");
    r.tokens_output = count_at(*usage, "candidatesTokenCount") + count_at(*usage, "thoughtsTokenCount");
  }
  const Json* candidates = member(body, "candidates");
  if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
    // A blocked prompt is a 200 with no candidates and promptFeedback.blockReason.
    const Json* feedback = member(body, "promptFeedback");
    const std::string reason = feedback != nullptr ? string_at(*feedback, "blockReason") : std::string();
    if (!reason.empty()) {
      r.finish_reason = reason;
      set_failure(r, FailureKind::Blocked);
      std::string message = "the prompt was blocked (" + reason + ")";
      if (const std::string why = string_at(*feedback, "blockReasonMessage"); !why.empty()) message += ": " + why;
      r.error_message = bounded_message(message);
    } else {
      set_failure(r, FailureKind::EmptyOutput);
      r.error_message = "the response has no candidates";
    }
    return;
  }
  const Json& candidate = (*candidates)[0];
  r.finish_reason = string_at(candidate, "finishReason");
  if (const Json* content = member(candidate, "content")) {
    if (const Json* parts = member(*content, "parts"); parts != nullptr && parts->is_array()) {
      for (const auto& part : *parts) {
        const Json* thought = member(part, "thought");
        if (thought != nullptr && thought->is_boolean() && thought->get<bool>()) continue;  // reasoning summary
        r.text += string_at(part, "text");
      }
    }
  }
  if (is_block_reason(r.finish_reason)) {
    set_failure(r, FailureKind::Blocked);
    r.error_message = "the response was blocked (" + r.finish_reason + ")";
  }
}

void GeminiCodec::read_error(const Json* body, const HttpResponse&, ChatResult& r) const {
  if (body == nullptr) return;
  const Json* error = member(*body, "error");
  if (error == nullptr || !error->is_object()) return;
  r.error_message = bounded_message(string_at(*error, "message"));
  const std::string status = string_at(*error, "status");
  for (const auto& rule : kStatusRules) {
    if (rule.status == status) set_failure(r, rule.kind);
  }
  const DetailFacts facts = read_details(*error);
  if (facts.bad_key || icontains(r.error_message, "API key not valid")) set_failure(r, FailureKind::Auth);
  if (facts.delay_ms) r.retry_after_ms = facts.delay_ms;
  if (r.failure == FailureKind::RateLimited && facts.daily_quota) {
    r.error_code = std::string(error_code::kDailyQuota);
    r.retryable = false;         // not before tomorrow (PROVIDERS §4)
    r.key_quota_spent = true;    // but the pool's other keys have quotas of their own
  }
}

}  // namespace celaest::core
