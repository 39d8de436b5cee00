// Ollama native chat codec (provider "local"): PROVIDERS.md §1-4.
#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "test_util.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;
using test::body_of;
using test::header;
using test::json_response;
using test::response;
using test::simple_request;

const ProviderCodec& ollama() { return codec_for(Provider::Local); }

json chat_reply(const std::string& content, const std::string& done_reason = "stop") {
  return {{"model", "llama3.2"},
          {"created_at", "2025-01-01T00:00:00.000Z"},
          {"message", {{"role", "assistant"}, {"content", content}}},
          {"done", true},
          {"done_reason", done_reason},
          {"total_duration", 4883583458LL},
          {"prompt_eval_count", 26},
          {"eval_count", 298}};
}

TEST(OllamaEncode, StreamFalseOptionsAndNoAuth) {
  ChatRequest req;
  req.model = "llama3.2";
  req.messages = {{"system", "Be brief."}, {"user", "Why is the sky blue?"}};
  req.temperature = 0.3;
  req.top_p = 0.95;
  req.max_tokens = 128;
  HttpRequest http = ollama().encode_chat(req, "http://localhost:11434/", "");
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, "http://localhost:11434/api/chat");
  EXPECT_EQ(header(http, "authorization"), "<absent>");
  EXPECT_EQ(header(http, "content-type"), "application/json");
  json body = body_of(http);
  EXPECT_EQ(body["model"], "llama3.2");
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["messages"], json::array({{{"role", "system"}, {"content", "Be brief."}},
                                           {{"role", "user"}, {"content", "Why is the sky blue?"}}}));
  EXPECT_DOUBLE_EQ(body["options"]["temperature"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(body["options"]["top_p"].get<double>(), 0.95);
  EXPECT_EQ(body["options"]["num_predict"], 128);
  EXPECT_FALSE(body.contains("format"));
  EXPECT_FALSE(body.contains("temperature")) << "sampling goes inside options";
}

TEST(OllamaEncode, StreamFalseEvenWithNoOptions) {
  json body = body_of(ollama().encode_chat(simple_request("qwen2.5", "hi"), "http://gpu-box:11434", ""));
  EXPECT_EQ(body["stream"], false);
  EXPECT_FALSE(body.contains("options"));
}

TEST(OllamaEncode, RemoteKeyIsBearer) {
  HttpRequest http = ollama().encode_chat(simple_request("gpt-oss:120b", "hi"), "https://ollama.com", "ol-key");
  EXPECT_EQ(header(http, "Authorization"), "Bearer ol-key");
}

TEST(OllamaEncode, JsonModeSetsFormatAndAsksInWords) {
  ChatRequest req = simple_request("llama3.2", "List three colours.");
  req.json_mode = true;
  json body = body_of(ollama().encode_chat(req, "http://localhost:11434", ""));
  EXPECT_EQ(body["format"], "json");
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][1]["role"], "system");
}

TEST(OllamaEncode, HealthCheck) {
  HttpRequest http = ollama().encode_health_check("http://localhost:11434", "");
  EXPECT_EQ(http.method, "GET");
  EXPECT_EQ(http.url, "http://localhost:11434/api/tags");
  EXPECT_EQ(header(http, "authorization"), "<absent>");
}

TEST(OllamaDecode, Success) {
  ChatResult r = ollama().decode_chat(json_response(200, chat_reply("The sky is blue because of Rayleigh scattering.")),
                                      simple_request("llama3.2", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "The sky is blue because of Rayleigh scattering.");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.tokens_input, 26);
  EXPECT_EQ(r.tokens_output, 298);
  EXPECT_EQ(r.provider_model, "llama3.2");
  EXPECT_EQ(r.request_id, "") << "Ollama sends no id";
}

TEST(OllamaDecode, ThinkingIsNotTheAnswerAndMissingPromptCountIsZero) {
  json reply = chat_reply("42");
  reply["message"]["thinking"] = "Let me compute...";
  reply.erase("prompt_eval_count");
  ChatResult r = ollama().decode_chat(json_response(200, reply), simple_request("qwen3", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "42");
  EXPECT_EQ(r.tokens_input, 0);
}

TEST(OllamaDecode, LoadOnlyReplyIsEmptyOutput) {
  json reply = {{"model", "llama3.2"}, {"message", {{"role", "assistant"}, {"content", ""}}}, {"done", true},
                {"done_reason", "load"}};
  ChatResult r = ollama().decode_chat(json_response(200, reply), simple_request("llama3.2", "x"));
  EXPECT_EQ(r.error_code, "empty_output");
  EXPECT_EQ(r.finish_reason, "load");
}

TEST(OllamaDecode, WhitespaceJsonOutputIsEmpty) {
  ChatRequest req = simple_request("llama3.2", "json");
  req.json_mode = true;
  ChatResult r = ollama().decode_chat(json_response(200, chat_reply("\n\n   \n")), req);
  EXPECT_EQ(r.error_code, "empty_output");
}

TEST(OllamaErrors, ModelNotFound) {
  ChatResult r = ollama().decode_chat(json_response(404, {{"error", "model 'llama9' not found, try pulling it first"}}),
                                      simple_request("llama9", "x"));
  EXPECT_EQ(r.failure, FailureKind::NotFound);
  EXPECT_EQ(r.error_code, "model_not_found");
  EXPECT_TRUE(r.try_next_model);
  EXPECT_EQ(r.error_message, "model 'llama9' not found, try pulling it first");
}

TEST(OllamaErrors, BadRequestQueueFullAndUnauthorized) {
  ChatResult bad = ollama().decode_chat(json_response(400, {{"error", "model is required"}}), simple_request("", "x"));
  EXPECT_EQ(bad.error_code, "bad_request");
  EXPECT_FALSE(bad.retryable);
  ChatResult busy = ollama().decode_chat(json_response(503, {{"error", "server busy, please try again.  maximum pending requests exceeded"}}),
                                         simple_request("m", "x"));
  EXPECT_EQ(busy.failure, FailureKind::Overloaded);
  EXPECT_TRUE(busy.retryable);
  ChatResult unauthorized = ollama().decode_chat(json_response(401, {{"error", "unauthorized"}}), simple_request("m", "x"));
  EXPECT_EQ(unauthorized.error_code, "auth_failed");
  EXPECT_TRUE(unauthorized.key_unhealthy);
  EXPECT_EQ(unauthorized.error_message, "unauthorized");
}

TEST(OllamaErrors, ServerError500IsRetryable) {
  ChatResult r = ollama().decode_chat(json_response(500, {{"error", "llama runner process has terminated: signal: killed"}}),
                                      simple_request("m", "x"));
  EXPECT_EQ(r.failure, FailureKind::ServerError);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.error_message, "llama runner process has terminated: signal: killed");
}

}  // namespace
}  // namespace celaest::core
