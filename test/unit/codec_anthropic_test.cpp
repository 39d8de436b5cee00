// Anthropic Messages codec: PROVIDERS.md §1-4.
#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "core/messages.hpp"
#include "test_util.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;
using test::body_of;
using test::header;
using test::json_response;
using test::response;
using test::simple_request;

const ProviderCodec& anthropic() { return codec_for(Provider::Anthropic); }

json message_reply(const json& content, const std::string& stop = "end_turn") {
  return {{"id", "msg_01XFDUDYJgAACzvnptvVoYEL"},
          {"type", "message"},
          {"role", "assistant"},
          {"model", "claude-sonnet-4-5-20250929"},
          {"content", content},
          {"stop_reason", stop},
          {"stop_sequence", nullptr},
          {"usage", {{"input_tokens", 12}, {"cache_creation_input_tokens", 100}, {"cache_read_input_tokens", 2000},
                     {"output_tokens", 6}, {"service_tier", "standard"}}}};
}

json text_blocks(const std::string& text) { return json::array({{{"type", "text"}, {"text", text}}}); }

json anthropic_error(const std::string& type, const std::string& message) {
  return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}, {"request_id", "req_011CSHoEeqs5C35K2UUqR7Fy"}};
}

TEST(AnthropicEncode, UrlHeadersAndDefaults) {
  HttpRequest http = anthropic().encode_chat(simple_request("claude-haiku-4-5", "Hello"), "https://api.anthropic.com/", "sk-ant-1");
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(header(http, "x-api-key"), "sk-ant-1");
  EXPECT_EQ(header(http, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(header(http, "content-type"), "application/json");
  EXPECT_EQ(header(http, "accept"), "application/json");
  EXPECT_EQ(header(http, "authorization"), "<absent>");
  json body = body_of(http);
  EXPECT_EQ(body["model"], "claude-haiku-4-5");
  EXPECT_EQ(body["max_tokens"], 1024) << "required by the API: defaulted";
  EXPECT_FALSE(body.contains("system"));
  EXPECT_EQ(body["messages"], json::array({{{"role", "user"}, {"content", "Hello"}}}));
}

TEST(AnthropicEncode, SystemExtractedAndTurnsMerged) {
  ChatRequest req;
  req.model = "claude-sonnet-4-5";
  req.max_tokens = 200;
  req.messages = {{"system", "You are a pirate."}, {"user", "Hi"}, {"user", "Who are you?"},
                  {"system", "Never break character."}, {"assistant", "Arr."}, {"assistant", "A pirate."},
                  {"user", "Prove it"}};
  json body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  EXPECT_EQ(body["max_tokens"], 200);
  EXPECT_EQ(body["system"], "You are a pirate.\n\nNever break character.");
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0], json({{"role", "user"}, {"content", "Hi\n\nWho are you?"}}));
  EXPECT_EQ(body["messages"][1], json({{"role", "assistant"}, {"content", "Arr.\n\nA pirate."}}));
  EXPECT_EQ(body["messages"][2], json({{"role", "user"}, {"content", "Prove it"}}));
  for (const auto& m : body["messages"]) EXPECT_NE(m["role"], "system");
}

TEST(AnthropicEncode, FirstTurnIsAlwaysUser) {
  ChatRequest req;
  req.model = "claude";
  req.messages = {{"system", "s"}, {"assistant", "Welcome!"}, {"user", "Thanks"}};
  json body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0]["role"], "user");
  EXPECT_EQ(body["messages"][0]["content"], kPlaceholderUserTurn);
  EXPECT_EQ(body["messages"][1]["role"], "assistant");
}

TEST(AnthropicEncode, TemperatureClampedAndPreferredOverTopP) {
  ChatRequest req = simple_request("claude", "x");
  req.temperature = 1.7;
  req.top_p = 0.9;
  json body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 1.0);
  EXPECT_FALSE(body.contains("top_p"));

  req.temperature = -0.5;
  body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.0);

  req.temperature.reset();
  body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  EXPECT_DOUBLE_EQ(body["top_p"].get<double>(), 0.9);
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(AnthropicEncode, JsonModeInstructsInSystemWithoutPrefill) {
  ChatRequest req;
  req.model = "claude-opus-4-6";
  req.json_mode = true;
  req.messages = {{"system", "Extract fields."}, {"user", "Name: Ana, age 31"}};
  json body = body_of(anthropic().encode_chat(req, "https://api.anthropic.com", "k"));
  EXPECT_EQ(body["system"], "Extract fields.\n\n" + std::string(kJsonInstruction));
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"].back()["role"], "user") << "no assistant prefill: Claude 4.6+ rejects it";
  EXPECT_FALSE(body.contains("response_format"));
}

TEST(AnthropicEncode, HealthCheck) {
  HttpRequest http = anthropic().encode_health_check("https://api.anthropic.com", "sk-ant-1");
  EXPECT_EQ(http.method, "GET");
  EXPECT_EQ(http.url, "https://api.anthropic.com/v1/models");
  EXPECT_EQ(header(http, "x-api-key"), "sk-ant-1");
  EXPECT_EQ(header(http, "anthropic-version"), "2023-06-01");
}

TEST(AnthropicDecode, SuccessJoinsTextBlocksAndCountsCacheTokens) {
  json content = json::array({{{"type", "thinking"}, {"thinking", "hmm"}, {"signature", "x"}},
                              {{"type", "text"}, {"text", "Hello, "}},
                              {{"type", "tool_use"}, {"id", "t"}, {"name", "f"}, {"input", json::object()}},
                              {{"type", "text"}, {"text", "world."}}});
  ChatResult r = anthropic().decode_chat(json_response(200, message_reply(content), {{"request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"}}),
                                         simple_request("claude", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "Hello, world.");
  EXPECT_EQ(r.finish_reason, "end_turn");
  EXPECT_EQ(r.tokens_input, 12 + 100 + 2000);
  EXPECT_EQ(r.tokens_output, 6);
  EXPECT_EQ(r.request_id, "req_018EeWyXxfu5pfWkrYcMdjWG");
  EXPECT_EQ(r.provider_model, "claude-sonnet-4-5-20250929");
}

TEST(AnthropicDecode, PrefillIsPrepended) {
  ChatRequest req;
  req.model = "claude-3-5-haiku";
  req.messages = {{"user", "Count to three"}, {"assistant", "1, 2"}};
  ChatResult r = anthropic().decode_chat(json_response(200, message_reply(text_blocks(", 3"))), req);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "1, 2, 3");
}

TEST(AnthropicDecode, JsonModeAcceptsFencedJson) {
  ChatRequest req = simple_request("claude-opus-4-6", "extract");
  req.json_mode = true;
  ChatResult r = anthropic().decode_chat(json_response(200, message_reply(text_blocks("```json\n{\"name\":\"Ana\"}\n```"))), req);
  EXPECT_TRUE(r.ok);
  ChatResult bad = anthropic().decode_chat(json_response(200, message_reply(text_blocks("Sure! Ana is 31."))), req);
  EXPECT_EQ(bad.error_code, "invalid_json_output");
}

TEST(AnthropicDecode, RefusalIsBlocked) {
  ChatResult r = anthropic().decode_chat(json_response(200, message_reply(json::array(), "refusal")), simple_request("c", "x"));
  EXPECT_EQ(r.failure, FailureKind::Blocked);
  EXPECT_EQ(r.error_code, "content_blocked");
  EXPECT_EQ(r.finish_reason, "refusal");
  EXPECT_EQ(r.tokens_output, 6);
}

TEST(AnthropicDecode, EmptyContentIsEmptyOutput) {
  ChatResult r = anthropic().decode_chat(json_response(200, message_reply(json::array(), "max_tokens")), simple_request("c", "x"));
  EXPECT_EQ(r.error_code, "empty_output");
  EXPECT_EQ(r.finish_reason, "max_tokens");
}

struct ErrorCase {
  long status;
  const char* type;
  FailureKind kind;
  const char* code;
  bool retryable, key_unhealthy, next_model;
};

TEST(AnthropicErrors, EveryDocumentedType) {
  const ErrorCase cases[] = {
      {400, "invalid_request_error", FailureKind::BadRequest, "bad_request", false, false, false},
      {401, "authentication_error", FailureKind::Auth, "auth_failed", false, true, false},
      {402, "billing_error", FailureKind::Billing, "billing", false, true, false},
      {403, "permission_error", FailureKind::Forbidden, "forbidden", false, true, false},
      {404, "not_found_error", FailureKind::NotFound, "model_not_found", false, false, true},
      {409, "conflict_error", FailureKind::ServerError, "conflict", true, false, false},
      {413, "request_too_large", FailureKind::TooLarge, "request_too_large", false, false, false},
      {429, "rate_limit_error", FailureKind::RateLimited, "rate_limited", true, false, false},
      {500, "api_error", FailureKind::ServerError, "server_error", true, false, false},
      {504, "timeout_error", FailureKind::Timeout, "timeout", true, false, false},
      {529, "overloaded_error", FailureKind::Overloaded, "overloaded", true, false, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type);
    ChatResult r = anthropic().decode_chat(json_response(c.status, anthropic_error(c.type, "msg for " + std::string(c.type))),
                                           simple_request("claude", "x"));
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.http_status, c.status);
    EXPECT_EQ(r.failure, c.kind);
    EXPECT_EQ(r.error_code, c.code);
    EXPECT_EQ(r.retryable, c.retryable);
    EXPECT_EQ(r.key_unhealthy, c.key_unhealthy);
    EXPECT_EQ(r.try_next_model, c.next_model);
    EXPECT_EQ(r.error_message, "msg for " + std::string(c.type));
    EXPECT_EQ(r.request_id, "req_011CSHoEeqs5C35K2UUqR7Fy") << "from the body when no header";
  }
}

TEST(AnthropicErrors, Overloaded529WithRetryAfter) {
  ChatResult r = anthropic().decode_chat(
      json_response(529, anthropic_error("overloaded_error", "Overloaded"), {{"retry-after", "7"}, {"request-id", "req_h"}}),
      simple_request("claude", "x"));
  EXPECT_EQ(r.failure, FailureKind::Overloaded);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.retry_after_ms, 7000);
  EXPECT_EQ(r.request_id, "req_h") << "the header wins over the body";
}

TEST(AnthropicErrors, SpendLimit429IsBilling) {
  json body = anthropic_error("rate_limit_error", "You have reached your specified workspace API usage limits.");
  body["error"]["details"] = {{"error_code", "enforced_spend_limit_reached"}};
  ChatResult r = anthropic().decode_chat(json_response(429, body, {{"retry-after", "30"}}), simple_request("claude", "x"));
  EXPECT_EQ(r.failure, FailureKind::Billing);
  EXPECT_EQ(r.error_code, "billing");
  EXPECT_FALSE(r.retryable);
  EXPECT_TRUE(r.key_unhealthy);
}

TEST(AnthropicErrors, CreditBalance400IsBilling) {
  ChatResult r = anthropic().decode_chat(
      json_response(400, anthropic_error("invalid_request_error",
                                         "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing.")),
      simple_request("claude", "x"));
  EXPECT_EQ(r.failure, FailureKind::Billing);
  EXPECT_TRUE(r.key_unhealthy);
}

TEST(AnthropicErrors, XShouldRetryOverridesTheStatus) {
  ChatResult no = anthropic().decode_chat(
      json_response(429, anthropic_error("rate_limit_error", "slow down"), {{"x-should-retry", "false"}}),
      simple_request("claude", "x"));
  EXPECT_EQ(no.failure, FailureKind::RateLimited);
  EXPECT_FALSE(no.retryable);
  ChatResult yes = anthropic().decode_chat(
      json_response(400, anthropic_error("invalid_request_error", "transient"), {{"X-Should-Retry", "true"}}),
      simple_request("claude", "x"));
  EXPECT_TRUE(yes.retryable);
}

}  // namespace
}  // namespace celaest::core
