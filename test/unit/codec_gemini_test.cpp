// Gemini generateContent codec: PROVIDERS.md §1-4.
#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "core/codec_gemini.hpp"
#include "test_util.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;
using test::body_of;
using test::header;
using test::json_response;
using test::simple_request;

const ProviderCodec& gemini() { return codec_for(Provider::Gemini); }
constexpr const char* kBase = "https://generativelanguage.googleapis.com/v1beta";

json candidate_reply(const json& parts, const std::string& finish = "STOP") {
  return {{"candidates", {{{"content", {{"parts", parts}, {"role", "model"}}}, {"finishReason", finish}, {"index", 0}}}},
          {"usageMetadata", {{"promptTokenCount", 8}, {"candidatesTokenCount", 12}, {"thoughtsTokenCount", 30},
                             {"totalTokenCount", 50}}},
          {"modelVersion", "gemini-2.5-flash"},
          {"responseId", "mK9vaLzRBqbJ-8YP9tLJ2Q0"}};
}

json gemini_error(int code, const std::string& status, const std::string& message, const json& details = json::array()) {
  json e = {{"code", code}, {"message", message}, {"status", status}};
  if (!details.empty()) e["details"] = details;
  return {{"error", e}};
}

TEST(GeminiEncode, UrlKeyHeaderAndBody) {
  ChatRequest req;
  req.model = "gemini-2.0-flash";
  req.messages = {{"system", "Be kind."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are you?"}};
  req.temperature = 0.4;
  req.top_p = 0.8;
  req.max_tokens = 256;
  HttpRequest http = gemini().encode_chat(req, std::string(kBase) + "/", "AIzaSy-test");
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, std::string(kBase) + "/models/gemini-2.0-flash:generateContent");
  EXPECT_EQ(http.url.find("key="), std::string::npos) << "the key never goes in the URL";
  EXPECT_EQ(header(http, "x-goog-api-key"), "AIzaSy-test");
  EXPECT_EQ(header(http, "content-type"), "application/json");
  json body = body_of(http);
  EXPECT_EQ(body["systemInstruction"], json({{"parts", {{{"text", "Be kind."}}}}}));
  ASSERT_EQ(body["contents"].size(), 3u);
  EXPECT_EQ(body["contents"][0], json({{"role", "user"}, {"parts", {{{"text", "Hi"}}}}}));
  EXPECT_EQ(body["contents"][1]["role"], "model");
  EXPECT_EQ(body["contents"][2]["role"], "user");
  EXPECT_DOUBLE_EQ(body["generationConfig"]["temperature"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(body["generationConfig"]["topP"].get<double>(), 0.8);
  EXPECT_EQ(body["generationConfig"]["maxOutputTokens"], 256);
  EXPECT_FALSE(body["generationConfig"].contains("max_tokens"));
  EXPECT_FALSE(body["generationConfig"].contains("responseMimeType"));
}

TEST(GeminiEncode, RolesAreUserAndModelOnlyAndMerged) {
  ChatRequest req;
  req.model = "gemini-2.5-pro";
  req.messages = {{"user", "a"}, {"user", "b"}, {"assistant", "c"}, {"assistant", "d"}, {"tool", "e"}};
  json body = body_of(gemini().encode_chat(req, kBase, "k"));
  ASSERT_EQ(body["contents"].size(), 3u);
  EXPECT_EQ(body["contents"][0]["parts"][0]["text"], "a\n\nb");
  EXPECT_EQ(body["contents"][1]["role"], "model");
  EXPECT_EQ(body["contents"][1]["parts"][0]["text"], "c\n\nd");
  EXPECT_EQ(body["contents"][2]["role"], "user");
  for (const auto& c : body["contents"]) EXPECT_TRUE(c["role"] == "user" || c["role"] == "model");
  EXPECT_FALSE(body.contains("systemInstruction"));
  EXPECT_FALSE(body.contains("generationConfig")) << "nothing to configure";
}

TEST(GeminiEncode, JsonModeSetsResponseMimeType) {
  ChatRequest req = simple_request("gemini-2.0-flash", "colours");
  req.json_mode = true;
  json body = body_of(gemini().encode_chat(req, kBase, "k"));
  EXPECT_EQ(body["generationConfig"]["responseMimeType"], "application/json");
}

TEST(GeminiEncode, ModelPathNormalised) {
  EXPECT_EQ(gemini_generate_path("models/gemini-1.5-pro-002"), "models/gemini-1.5-pro-002:generateContent");
  EXPECT_EQ(gemini_generate_path("weird/name"), "models/weird%2Fname:generateContent");
}

TEST(GeminiEncode, HealthCheck) {
  HttpRequest http = gemini().encode_health_check(kBase, "AIzaSy-test");
  EXPECT_EQ(http.method, "GET");
  EXPECT_EQ(http.url, std::string(kBase) + "/models");
  EXPECT_EQ(header(http, "x-goog-api-key"), "AIzaSy-test");
}

TEST(GeminiDecode, SuccessSkipsThoughtsAndBillsThemAsOutput) {
  json parts = json::array({{{"text", "Let me think about colours..."}, {"thought", true}},
                            {{"text", "Red, "}},
                            {{"text", "green."}, {"thoughtSignature", "abc"}}});
  ChatResult r = gemini().decode_chat(json_response(200, candidate_reply(parts)), simple_request("gemini-2.5-flash", "x"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text, "Red, green.");
  EXPECT_EQ(r.finish_reason, "STOP");
  EXPECT_EQ(r.tokens_input, 8);
  EXPECT_EQ(r.tokens_output, 12 + 30);
  EXPECT_EQ(r.request_id, "mK9vaLzRBqbJ-8YP9tLJ2Q0");
  EXPECT_EQ(r.provider_model, "gemini-2.5-flash");
}

TEST(GeminiDecode, AbsentCandidatesTokenCountIsZero) {
  json reply = candidate_reply(json::array(), "MAX_TOKENS");
  reply["usageMetadata"] = {{"promptTokenCount", 5}, {"thoughtsTokenCount", 64}, {"totalTokenCount", 69}};
  reply["candidates"][0].erase("content");
  ChatResult r = gemini().decode_chat(json_response(200, reply), simple_request("gemini-2.5-flash", "x"));
  EXPECT_EQ(r.error_code, "empty_output") << "thinking ate the whole cap";
  EXPECT_EQ(r.finish_reason, "MAX_TOKENS");
  EXPECT_EQ(r.tokens_input, 5);
  EXPECT_EQ(r.tokens_output, 64);
}

TEST(GeminiDecode, BlockedPromptIsA200WithoutCandidates) {
  json reply = {{"promptFeedback", {{"blockReason", "PROHIBITED_CONTENT"}}},
                {"usageMetadata", {{"promptTokenCount", 9}, {"totalTokenCount", 9}}},
                {"modelVersion", "gemini-2.0-flash"}};
  ChatResult r = gemini().decode_chat(json_response(200, reply), simple_request("gemini-2.0-flash", "x"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.failure, FailureKind::Blocked);
  EXPECT_EQ(r.error_code, "content_blocked");
  EXPECT_FALSE(r.retryable);
  EXPECT_EQ(r.finish_reason, "PROHIBITED_CONTENT");
  EXPECT_EQ(r.error_message, "the prompt was blocked (PROHIBITED_CONTENT)");
  EXPECT_EQ(r.tokens_input, 9);
  EXPECT_EQ(r.tokens_output, 0);
}

TEST(GeminiDecode, BlockedAnswerIsASafetyCandidate) {
  json reply = candidate_reply(json::array(), "SAFETY");
  reply["candidates"][0].erase("content");
  reply["candidates"][0]["safetyRatings"] = json::array({{{"category", "HARM_CATEGORY_HARASSMENT"}, {"probability", "HIGH"}}});
  ChatResult r = gemini().decode_chat(json_response(200, reply), simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.failure, FailureKind::Blocked);
  EXPECT_EQ(r.error_code, "content_blocked");
  EXPECT_EQ(r.finish_reason, "SAFETY");
}

TEST(GeminiDecode, NoCandidatesNoFeedbackIsEmptyOutput) {
  ChatResult r = gemini().decode_chat(json_response(200, {{"usageMetadata", {{"promptTokenCount", 3}}}}),
                                      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.error_code, "empty_output");
}

TEST(GeminiErrors, ApiKeyInvalidIsA400ThatMarksTheKey) {
  json details = json::array({{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                               {"reason", "API_KEY_INVALID"},
                               {"domain", "googleapis.com"},
                               {"metadata", {{"service", "generativelanguage.googleapis.com"}}}},
                              {{"@type", "type.googleapis.com/google.rpc.LocalizedMessage"},
                               {"locale", "en-US"},
                               {"message", "API key not valid. Please pass a valid API key."}}});
  ChatResult r = gemini().decode_chat(
      json_response(400, gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details)),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(r.failure, FailureKind::Auth);
  EXPECT_EQ(r.error_code, "auth_failed");
  EXPECT_TRUE(r.key_unhealthy);
  EXPECT_FALSE(r.retryable);
  EXPECT_EQ(r.error_message, "API key not valid. Please pass a valid API key.");
}

TEST(GeminiErrors, PlainInvalidArgumentIsABadRequest) {
  ChatResult r = gemini().decode_chat(
      json_response(400, gemini_error(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.failure, FailureKind::BadRequest);
  EXPECT_FALSE(r.key_unhealthy);
  EXPECT_FALSE(r.retryable);
}

TEST(GeminiErrors, FailedPreconditionIsBilling) {
  ChatResult r = gemini().decode_chat(
      json_response(400, gemini_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.failure, FailureKind::Billing);
  EXPECT_TRUE(r.key_unhealthy);
  EXPECT_FALSE(r.retryable);
}

TEST(GeminiErrors, PermissionDeniedAndNotFound) {
  ChatResult denied = gemini().decode_chat(
      json_response(403, gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(denied.failure, FailureKind::Forbidden);
  EXPECT_TRUE(denied.key_unhealthy);
  ChatResult missing = gemini().decode_chat(
      json_response(404, gemini_error(404, "NOT_FOUND",
                                      "models/gemini-9 is not found for API version v1beta, or is not supported for "
                                      "generateContent.")),
      simple_request("gemini-9", "x"));
  EXPECT_EQ(missing.error_code, "model_not_found");
  EXPECT_TRUE(missing.try_next_model);
}

TEST(GeminiErrors, RateLimitUsesRetryInfoDelay) {
  json details = json::array(
      {{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
        {"violations", {{{"quotaMetric", "generativelanguage.googleapis.com/generate_content_free_tier_requests"},
                         {"quotaId", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}}}}},
       {{"@type", "type.googleapis.com/google.rpc.Help"}, {"links", json::array()}},
       {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", "45.837906927s"}}});
  ChatResult r = gemini().decode_chat(
      json_response(429, gemini_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.failure, FailureKind::RateLimited);
  EXPECT_EQ(r.error_code, "rate_limited");
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.retry_after_ms, 45838);
}

TEST(GeminiErrors, PerDayQuotaIsNotRetryable) {
  json details = json::array(
      {{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
        {"violations", {{{"quotaId", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}}}}},
       {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", "37s"}}});
  ChatResult r = gemini().decode_chat(
      json_response(429, gemini_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_EQ(r.failure, FailureKind::RateLimited);
  EXPECT_EQ(r.error_code, "daily_quota_exhausted");
  EXPECT_FALSE(r.retryable);
  EXPECT_EQ(r.retry_after_ms, 37000);
  // The key's own quota: not a bad key, and the pool's other keys may still serve.
  EXPECT_TRUE(r.key_quota_spent);
  EXPECT_FALSE(r.key_unhealthy);
  EXPECT_FALSE(r.try_next_model);
}

TEST(GeminiErrors, PerMinuteQuotaLeavesTheKeysDayAlone) {
  json details = json::array(
      {{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
        {"violations", {{{"quotaId", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}}}}}});
  ChatResult r = gemini().decode_chat(
      json_response(429, gemini_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)),
      simple_request("gemini-2.0-flash", "x"));
  EXPECT_TRUE(r.retryable);
  EXPECT_FALSE(r.key_quota_spent);
}

TEST(GeminiErrors, ServerSide) {
  ChatResult internal = gemini().decode_chat(json_response(500, gemini_error(500, "INTERNAL", "An internal error has occurred.")),
                                             simple_request("g", "x"));
  EXPECT_EQ(internal.failure, FailureKind::ServerError);
  EXPECT_TRUE(internal.retryable);
  ChatResult unavailable = gemini().decode_chat(
      json_response(503, gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")),
      simple_request("g", "x"));
  EXPECT_EQ(unavailable.error_code, "overloaded");
  EXPECT_TRUE(unavailable.retryable);
  ChatResult deadline = gemini().decode_chat(json_response(504, gemini_error(504, "DEADLINE_EXCEEDED", "Deadline expired")),
                                             simple_request("g", "x"));
  EXPECT_EQ(deadline.error_code, "timeout");
  EXPECT_TRUE(deadline.retryable);
}

}  // namespace
}  // namespace celaest::core
