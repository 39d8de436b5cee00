// OpenAI-compatible codec (openai, groq, deepseek): PROVIDERS.md §1-4.
#include <ctime>

#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "core/codec_openai.hpp"
#include "test_util.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;
using test::body_of;
using test::header;
using test::json_response;
using test::response;
using test::simple_request;

const ProviderCodec& openai() { return codec_for(Provider::OpenAI); }

json completion(const std::string& content, const std::string& finish = "stop") {
  return {{"id", "chatcmpl-abc123"},
          {"object", "chat.completion"},
          {"created", 1730000000},
          {"model", "gpt-4o-mini-2024-07-18"},
          {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}}},
                        {"logprobs", nullptr}, {"finish_reason", finish}}}},
          {"usage", {{"prompt_tokens", 19}, {"completion_tokens", 10}, {"total_tokens", 29},
                     {"prompt_tokens_details", {{"cached_tokens", 0}}}}},
          {"system_fingerprint", "fp_1"},
          {"service_tier", "default"}};
}

TEST(OpenAIEncode, UrlHeadersAndBody) {
  ChatRequest req;
  req.model = "gpt-4o-mini";
  req.messages = {{"system", "You are terse."}, {"user", "Say \"hi\"\n\\ now"}};
  req.temperature = 0.2;
  req.top_p = 0.9;
  req.max_tokens = 50;
  HttpRequest http = openai().encode_chat(req, "https://api.openai.com/v1/", "sk-test");
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(header(http, "authorization"), "Bearer sk-test");
  EXPECT_EQ(header(http, "content-type"), "application/json");
  EXPECT_EQ(header(http, "accept"), "application/json");
  json body = body_of(http);
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0], json({{"role", "system"}, {"content", "You are terse."}}));
  EXPECT_EQ(body["messages"][1]["content"], "Say \"hi\"\n\\ now");  // escaped and round-trips
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(body["top_p"].get<double>(), 0.9);
  EXPECT_EQ(body["max_tokens"], 50);
  EXPECT_FALSE(body.contains("response_format"));
  EXPECT_FALSE(body.contains("max_completion_tokens"));
  EXPECT_EQ(http.body.find("sk-test"), std::string::npos) << "the key goes in a header only";
}

TEST(OpenAIEncode, OmitsUnsetSamplingFields) {
  json body = body_of(openai().encode_chat(simple_request("gpt-4o", "hi"), "https://api.openai.com/v1", "k"));
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("top_p"));
  EXPECT_FALSE(body.contains("max_tokens"));
}

TEST(OpenAIEncode, ReasoningModelsUseMaxCompletionTokensAndNoSampling) {
  for (const char* model : {"o1-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini"}) {
    ChatRequest req = simple_request(model, "hi");
    req.temperature = 0.7;
    req.top_p = 0.5;
    req.max_tokens = 300;
    json body = body_of(openai().encode_chat(req, "https://api.openai.com/v1", "k"));
    SCOPED_TRACE(model);
    EXPECT_EQ(body["max_completion_tokens"], 300);
    EXPECT_FALSE(body.contains("max_tokens"));
    EXPECT_FALSE(body.contains("temperature"));
    EXPECT_FALSE(body.contains("top_p"));
  }
  EXPECT_FALSE(is_openai_reasoning_model("gpt-4o"));
  EXPECT_FALSE(is_openai_reasoning_model("gpt-4.1-mini"));
  EXPECT_TRUE(is_openai_reasoning_model("O3-mini"));
}

TEST(OpenAIEncode, ReasoningRuleIsOpenAIOnly) {
  // Groq hosts openai/gpt-oss and others that take max_tokens and temperature.
  ChatRequest req = simple_request("o3-lookalike", "hi");
  req.max_tokens = 10;
  req.temperature = 0.1;
  json body = body_of(codec_for(Provider::Groq).encode_chat(req, "https://api.groq.com/openai/v1", "gsk"));
  EXPECT_EQ(body["max_tokens"], 10);
  EXPECT_TRUE(body.contains("temperature"));
}

TEST(OpenAIEncode, JsonModeAddsInstructionOnlyWhenNoMessageSaysJson) {
  ChatRequest req = simple_request("gpt-4o-mini", "List three colours.");
  req.json_mode = true;
  json body = body_of(openai().encode_chat(req, "https://api.openai.com/v1", "k"));
  EXPECT_EQ(body["response_format"], json({{"type", "json_object"}}));
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][1]["role"], "system");
  EXPECT_NE(body["messages"][1]["content"].get<std::string>().find("json"), std::string::npos);

  req.messages[0].content = "List three colours as JSON {\"colours\": [...]}";
  body = body_of(openai().encode_chat(req, "https://api.openai.com/v1", "k"));
  EXPECT_EQ(body["messages"].size(), 1u);
}

TEST(OpenAIEncode, GroqAndDeepSeekPaths) {
  ChatRequest req = simple_request("llama-3.3-70b-versatile", "hi");
  HttpRequest groq = codec_for(Provider::Groq).encode_chat(req, "https://api.groq.com/openai/v1", "gsk_1");
  EXPECT_EQ(groq.url, "https://api.groq.com/openai/v1/chat/completions");
  EXPECT_EQ(header(groq, "Authorization"), "Bearer gsk_1");
  HttpRequest ds = codec_for(Provider::DeepSeek).encode_chat(req, "https://api.deepseek.com", "sk-ds");
  EXPECT_EQ(ds.url, "https://api.deepseek.com/chat/completions");
}

TEST(OpenAIEncode, InvalidUtf8IsReplacedNotThrown) {
  ChatRequest req = simple_request("gpt-4o", std::string("caf\xE9"));  // Latin-1 é
  HttpRequest http;
  ASSERT_NO_THROW(http = openai().encode_chat(req, "https://api.openai.com/v1", "k"));
  EXPECT_EQ(body_of(http)["messages"][0]["content"], "caf\xEF\xBF\xBD");
}

TEST(OpenAIEncode, HealthCheck) {
  HttpRequest http = openai().encode_health_check("https://api.openai.com/v1", "sk-test");
  EXPECT_EQ(http.method, "GET");
  EXPECT_EQ(http.url, "https://api.openai.com/v1/models");
  EXPECT_EQ(header(http, "Authorization"), "Bearer sk-test");
  EXPECT_TRUE(http.body.empty());
  EXPECT_TRUE(openai().health_ok(response(200, "{}")));
  EXPECT_FALSE(openai().health_ok(response(401, "{}")));
}

TEST(OpenAIDecode, SuccessWithUsageAndRequestId) {
  ChatRequest req = simple_request("gpt-4o-mini", "hi");
  ChatResult r = openai().decode_chat(json_response(200, completion("Hello there!"), {{"X-Request-Id", "req_9f8e"}}), req);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.failure, FailureKind::None);
  EXPECT_EQ(r.text, "Hello there!");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.tokens_input, 19);
  EXPECT_EQ(r.tokens_output, 10);
  EXPECT_EQ(r.request_id, "req_9f8e");
  EXPECT_EQ(r.provider_model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_TRUE(r.error_code.empty());
}

TEST(OpenAIDecode, LeadingBlankLinesAndUnknownFields) {
  json c = completion("ok");
  c["brand_new_field"] = {{"nested", true}};
  c["choices"][0]["message"]["reasoning_content"] = "thinking...";
  c["usage"] = {{"prompt_tokens", 7}, {"completion_tokens", 3}, {"prompt_cache_hit_tokens", 5},
                {"prompt_cache_miss_tokens", 2}};
  ChatResult r = codec_for(Provider::DeepSeek).decode_chat(response(200, "\n\n\n  " + c.dump()), simple_request("deepseek-chat", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "ok");
  EXPECT_EQ(r.tokens_input, 7);
  EXPECT_EQ(r.tokens_output, 3);
  EXPECT_EQ(r.request_id, "chatcmpl-abc123") << "DeepSeek: body id when no header";
}

TEST(OpenAIDecode, ContentAsTextParts) {
  json c = completion("");
  c["choices"][0]["message"]["content"] = json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}});
  ChatResult r = openai().decode_chat(json_response(200, c), simple_request("m", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "ab");
}

TEST(OpenAIDecode, DeepSeekJsonModeBlankContentIsEmptyOutput) {
  ChatRequest req = simple_request("deepseek-chat", "json please");
  req.json_mode = true;
  ChatResult r = codec_for(Provider::DeepSeek).decode_chat(json_response(200, completion("\n\n")), req);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, FailureKind::EmptyOutput);
  EXPECT_EQ(r.error_code, "empty_output");
  EXPECT_FALSE(r.retryable);
  EXPECT_EQ(r.tokens_input, 19) << "tokens are billed even for an empty answer";
}

TEST(OpenAIDecode, NullContentIsEmptyOutput) {
  json c = completion("", "length");
  c["choices"][0]["message"]["content"] = nullptr;
  ChatResult r = openai().decode_chat(json_response(200, c), simple_request("o3", "x"));
  EXPECT_EQ(r.error_code, "empty_output");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_NE(r.error_message.find("length"), std::string::npos);
}

TEST(OpenAIDecode, JsonModeOutputIsValidated) {
  ChatRequest req = simple_request("gpt-4o-mini", "json");
  req.json_mode = true;
  ChatResult good = openai().decode_chat(json_response(200, completion("{\"colours\":[\"red\"]}")), req);
  EXPECT_TRUE(good.ok);
  ChatResult bad = openai().decode_chat(json_response(200, completion("{\"colours\":[\"red\"", "length")), req);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error_code, "invalid_json_output");
  EXPECT_EQ(bad.text, "{\"colours\":[\"red\"") << "the text is kept for the record";
}

TEST(OpenAIDecode, InsufficientSystemResourceIsRetryable) {
  ChatResult r = codec_for(Provider::DeepSeek)
                     .decode_chat(json_response(200, completion("partial", "insufficient_system_resource")),
                                  simple_request("deepseek-chat", "x"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, FailureKind::Overloaded);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.finish_reason, "insufficient_system_resource");
}

TEST(OpenAIDecode, RefusalAndContentFilterAreBlocked) {
  json c = completion("", "stop");
  c["choices"][0]["message"]["content"] = nullptr;
  c["choices"][0]["message"]["refusal"] = "I can't help with that.";
  ChatResult r = openai().decode_chat(json_response(200, c), simple_request("gpt-4o", "x"));
  EXPECT_EQ(r.failure, FailureKind::Blocked);
  EXPECT_EQ(r.error_code, "content_blocked");
  EXPECT_EQ(r.error_message, "I can't help with that.");

  ChatResult f = openai().decode_chat(json_response(200, completion("Once upon", "content_filter")),
                                      simple_request("gpt-4o", "x"));
  EXPECT_EQ(f.error_code, "content_blocked");
  EXPECT_FALSE(f.retryable);
}

TEST(OpenAIDecode, NoChoicesIsMalformed) {
  json c = completion("x");
  c["choices"] = json::array();
  ChatResult r = openai().decode_chat(json_response(200, c), simple_request("m", "x"));
  EXPECT_EQ(r.failure, FailureKind::MalformedResponse);
  EXPECT_EQ(r.error_code, "malformed_response");
}

json openai_error(const std::string& message, const std::string& type, const json& code, bool with_param = true) {
  json e = {{"message", message}, {"type", type}, {"code", code}};
  if (with_param) e["param"] = nullptr;
  return {{"error", e}};
}

TEST(OpenAIErrors, InvalidApiKey401) {
  ChatResult r = openai().decode_chat(
      json_response(401, openai_error("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error", "invalid_api_key"),
                    {{"x-request-id", "req_401"}}),
      simple_request("gpt-4o", "x"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.http_status, 401);
  EXPECT_EQ(r.failure, FailureKind::Auth);
  EXPECT_EQ(r.error_code, "auth_failed");
  EXPECT_TRUE(r.key_unhealthy);
  EXPECT_FALSE(r.retryable);
  EXPECT_EQ(r.error_message, "Incorrect API key provided: sk-abc***xyz.");
  EXPECT_EQ(r.request_id, "req_401");
}

TEST(OpenAIErrors, GroqInvalidKeyWithoutParam) {
  ChatResult r = codec_for(Provider::Groq).decode_chat(
      json_response(401, openai_error("Invalid API Key", "invalid_request_error", "invalid_api_key", false)),
      simple_request("llama", "x"));
  EXPECT_EQ(r.error_code, "auth_failed");
  EXPECT_EQ(r.error_message, "Invalid API Key");
}

TEST(OpenAIErrors, DeepSeekAuthAndBalance) {
  ChatResult auth = codec_for(Provider::DeepSeek).decode_chat(
      json_response(401, openai_error("Authentication Fails, Your api key: ****abcd is invalid", "authentication_error",
                                      "invalid_request_error")),
      simple_request("deepseek-chat", "x"));
  EXPECT_EQ(auth.error_code, "auth_failed");
  EXPECT_TRUE(auth.key_unhealthy);
  ChatResult balance = codec_for(Provider::DeepSeek).decode_chat(
      json_response(402, openai_error("Insufficient Balance", "unknown_error", "invalid_request_error")),
      simple_request("deepseek-chat", "x"));
  EXPECT_EQ(balance.failure, FailureKind::Billing);
  EXPECT_EQ(balance.error_code, "billing");
  EXPECT_TRUE(balance.key_unhealthy);
  EXPECT_FALSE(balance.retryable);
}

TEST(OpenAIErrors, BadRequest400NotRetryable) {
  ChatResult r = openai().decode_chat(
      json_response(400, openai_error("We could not parse the JSON body of your request.", "invalid_request_error", nullptr)),
      simple_request("gpt-4o", "x"));
  EXPECT_EQ(r.failure, FailureKind::BadRequest);
  EXPECT_EQ(r.error_code, "bad_request");
  EXPECT_FALSE(r.retryable);
  EXPECT_FALSE(r.key_unhealthy);
  EXPECT_EQ(r.error_message, "We could not parse the JSON body of your request.");
}

TEST(OpenAIErrors, ModelNotFound404TriesNextModel) {
  ChatResult r = openai().decode_chat(
      json_response(404, openai_error("The model `gpt-9` does not exist or you do not have access to it.",
                                      "invalid_request_error", "model_not_found")),
      simple_request("gpt-9", "x"));
  EXPECT_EQ(r.failure, FailureKind::NotFound);
  EXPECT_EQ(r.error_code, "model_not_found");
  EXPECT_TRUE(r.try_next_model);
  EXPECT_FALSE(r.retryable);
  EXPECT_FALSE(r.key_unhealthy);
}

TEST(OpenAIErrors, GroqDecommissionedModelAt400TriesNextModel) {
  ChatResult r = codec_for(Provider::Groq).decode_chat(
      json_response(400, openai_error("The model `mixtral-8x7b-32768` has been decommissioned", "invalid_request_error",
                                      "model_decommissioned", false)),
      simple_request("mixtral-8x7b-32768", "x"));
  EXPECT_EQ(r.error_code, "model_not_found");
  EXPECT_TRUE(r.try_next_model);
}

TEST(OpenAIErrors, GroqJsonValidateFailed) {
  ChatResult r = codec_for(Provider::Groq).decode_chat(
      json_response(400, openai_error("Failed to generate JSON. Please adjust your prompt.", "invalid_request_error",
                                      "json_validate_failed", false)),
      simple_request("llama", "json"));
  EXPECT_EQ(r.failure, FailureKind::BadRequest);
  EXPECT_EQ(r.error_code, "invalid_json_output");
  EXPECT_FALSE(r.retryable);
}

TEST(OpenAIErrors, RateLimit429WithRetryAfterSeconds) {
  ChatResult r = openai().decode_chat(
      json_response(429, openai_error("Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.",
                                      "requests", "rate_limit_exceeded"),
                    {{"Retry-After", "20"}}),
      simple_request("gpt-4o-mini", "x"));
  EXPECT_EQ(r.failure, FailureKind::RateLimited);
  EXPECT_EQ(r.error_code, "rate_limited");
  EXPECT_TRUE(r.retryable);
  EXPECT_FALSE(r.key_unhealthy);
  EXPECT_EQ(r.retry_after_ms, 20000);
}

TEST(OpenAIErrors, RateLimit429WithRetryAfterHttpDate) {
  // A date ~30 s ahead of the decoder's clock: the hint must land near 30 s.
  const auto when = std::chrono::system_clock::now() + std::chrono::seconds(31);
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  ChatResult r = openai().decode_chat(
      json_response(429, openai_error("Rate limit reached", "requests", "rate_limit_exceeded"), {{"retry-after", date}}),
      simple_request("gpt-4o-mini", "x"));
  ASSERT_TRUE(r.retry_after_ms.has_value()) << date;
  EXPECT_GE(*r.retry_after_ms, 28000);
  EXPECT_LE(*r.retry_after_ms, 31000);
  EXPECT_TRUE(r.retryable);
}

TEST(OpenAIErrors, RateLimit429WithRetryAfterMs) {
  ChatResult r = openai().decode_chat(
      json_response(429, openai_error("Rate limit reached", "tokens", "rate_limit_exceeded"),
                    {{"retry-after", "2"}, {"retry-after-ms", "1500"}}),
      simple_request("gpt-4o-mini", "x"));
  EXPECT_EQ(r.retry_after_ms, 1500);
}

TEST(OpenAIErrors, RateLimit429FallsBackToExhaustedResetHeader) {
  ChatResult r = codec_for(Provider::Groq).decode_chat(
      json_response(429, openai_error("Rate limit reached for model on tokens per minute (TPM)", "tokens",
                                      "rate_limit_exceeded", false),
                    {{"x-ratelimit-remaining-tokens", "0"}, {"x-ratelimit-reset-tokens", "7.66s"},
                     {"x-ratelimit-remaining-requests", "14"}, {"x-ratelimit-reset-requests", "2m59.56s"}}),
      simple_request("llama", "x"));
  EXPECT_EQ(r.retry_after_ms, 7660);
}

TEST(OpenAIErrors, InsufficientQuota429IsBillingNotRetryable) {
  ChatResult r = openai().decode_chat(
      json_response(429, openai_error("You exceeded your current quota, please check your plan and billing details.",
                                      "insufficient_quota", "insufficient_quota"),
                    {{"retry-after", "1"}}),
      simple_request("gpt-4o", "x"));
  EXPECT_EQ(r.failure, FailureKind::Billing);
  EXPECT_EQ(r.error_code, "billing");
  EXPECT_FALSE(r.retryable);
  EXPECT_TRUE(r.key_unhealthy);
  EXPECT_EQ(r.http_status, 429);
}

TEST(OpenAIErrors, TooLargeAndUnprocessable) {
  ChatResult big = codec_for(Provider::Groq).decode_chat(
      json_response(413, openai_error("Request Entity Too Large", "invalid_request_error", "request_too_large", false)),
      simple_request("llama", "x"));
  EXPECT_EQ(big.failure, FailureKind::TooLarge);
  EXPECT_EQ(big.error_code, "request_too_large");
  EXPECT_FALSE(big.retryable);
  ChatResult bad = codec_for(Provider::DeepSeek).decode_chat(
      json_response(422, openai_error("Invalid temperature", "invalid_request_error", nullptr)),
      simple_request("deepseek-chat", "x"));
  EXPECT_EQ(bad.failure, FailureKind::Unprocessable);
  EXPECT_FALSE(bad.retryable);
}

TEST(OpenAIErrors, ServerSideFailuresAreRetryable) {
  ChatResult s500 = openai().decode_chat(
      json_response(500, openai_error("The server had an error while processing your request.", "server_error", nullptr)),
      simple_request("gpt-4o", "x"));
  EXPECT_EQ(s500.failure, FailureKind::ServerError);
  EXPECT_TRUE(s500.retryable);
  ChatResult s503 = codec_for(Provider::DeepSeek).decode_chat(
      json_response(503, openai_error("Server overloaded, please retry shortly.", "server_error", nullptr)),
      simple_request("deepseek-chat", "x"));
  EXPECT_EQ(s503.error_code, "overloaded");
  EXPECT_TRUE(s503.retryable);
  ChatResult s498 = codec_for(Provider::Groq).decode_chat(
      json_response(498, openai_error("Flex tier capacity exceeded", "capacity_exceeded", nullptr, false)),
      simple_request("llama", "x"));
  EXPECT_EQ(s498.failure, FailureKind::Overloaded);
  EXPECT_TRUE(s498.retryable);
  ChatResult s408 = openai().decode_chat(response(408, ""), simple_request("gpt-4o", "x"));
  EXPECT_TRUE(s408.retryable);
  ChatResult s409 = openai().decode_chat(response(409, ""), simple_request("gpt-4o", "x"));
  EXPECT_TRUE(s409.retryable);
  EXPECT_EQ(s409.error_code, "conflict");
}

TEST(OpenAIErrors, NonJsonProxyPageKeepsStatus) {
  ChatResult r = openai().decode_chat(
      response(502, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudflare</body></html>"),
      simple_request("gpt-4o", "x"));
  EXPECT_EQ(r.http_status, 502);
  EXPECT_EQ(r.failure, FailureKind::Overloaded);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.error_message, "<html> <head><title>502 Bad Gateway</title></head> <body>cloudflare</body></html>");
}

TEST(OpenAIErrors, EmptyErrorBodySaysTheStatus) {
  ChatResult r = openai().decode_chat(response(503, ""), simple_request("gpt-4o", "x"));
  EXPECT_EQ(r.error_message, "HTTP 503");
  EXPECT_TRUE(r.retryable);
}

}  // namespace
}  // namespace celaest::core
