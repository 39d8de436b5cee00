#include "core/codec_ollama.hpp"

#include "core/failure.hpp"
#include "core/messages.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace celaest::core {
namespace {

using OJson = nlohmann::ordered_json;

void add_auth(HttpRequest& req, std::string_view api_key) {
  // A local Ollama has no auth; a remote or cloud one takes a bearer token.
  if (!api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + std::string(api_key)});
}

}  // namespace

HttpRequest OllamaCodec::encode_chat(const ChatRequest& request, std::string_view base_url,
                                     std::string_view api_key) const {
  OJson body;
  body["model"] = request.model;
  OJson messages = OJson::array();
  for (const auto& m : request.messages) messages.push_back({{"role", to_lower(m.role)}, {"content", m.content}});
  // format:"json" alone can yield whitespace; the model must also be asked in words.
  if (request.json_mode && !mentions_json(request.messages)) {
    messages.push_back({{"role", "system"}, {"content", kJsonInstruction}});
  }
  body["messages"] = std::move(messages);
  body["stream"] = false;  // Ollama streams NDJSON by default; we read one JSON reply
  OJson options = OJson::object();
  if (request.temperature) options["temperature"] = *request.temperature;
  if (request.top_p) options["top_p"] = *request.top_p;
  if (request.max_tokens) options["num_predict"] = *request.max_tokens;
  if (!options.empty()) body["options"] = std::move(options);
  if (request.json_mode) body["format"] = "json";

  HttpRequest req = post_json(join_url(base_or_default(base_url), "api/chat"), dump_body(body));
  add_auth(req, api_key);
  return req;
}

HttpRequest OllamaCodec::encode_health_check(std::string_view base_url, std::string_view api_key) const {
  HttpRequest req = get(join_url(base_or_default(base_url), "api/tags"));
  add_auth(req, api_key);
  return req;
}

void OllamaCodec::read_success(const Json& body, const HttpResponse&, const ChatRequest&, ChatResult& r) const {
  r.provider_model = string_at(body, "model");
  r.finish_reason = string_at(body, "done_reason");
  // Older builds omit prompt_eval_count on a cached prompt: 0 is then the truth billed.
  r.tokens_input = count_at(body, "prompt_eval_count");
  r.tokens_output = count_at(body, "eval_count");
  const Json* message = member(body, "message");
  if (message == nullptr || !message->is_object()) {
    set_failure(r, FailureKind::MalformedResponse);
    const std::string error = string_at(body, "error");
    r.error_message = error.empty() ? "response has no message" : bounded_message(error);
    return;
  }
  r.text = string_at(*message, "content");  // "thinking" is separate and not the answer
}

void OllamaCodec::read_error(const Json* body, const HttpResponse&, ChatResult& r) const {
  if (body == nullptr) return;
  const Json* error = member(*body, "error");
  if (error == nullptr) return;
  if (error->is_string()) r.error_message = bounded_message(error->get<std::string>());
  if (error->is_object()) r.error_message = bounded_message(string_at(*error, "message"));
}

}  // namespace celaest::core
