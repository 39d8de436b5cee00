// What every codec must survive: bodies that are empty, truncated, not JSON, huge, deeply
// nested or oddly typed. decode_chat never throws and always says what happened.
#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "test_util.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;
using test::response;
using test::simple_request;

class EveryCodec : public ::testing::TestWithParam<Provider> {
 protected:
  const ProviderCodec& codec() const { return codec_for(GetParam()); }
  ChatResult decode(long status, std::string body) const {
    return codec().decode_chat(response(status, std::move(body)), simple_request("m", "x"));
  }
};

// A minimal successful reply carrying `text`, in each provider's shape.
json success_body(Provider p, const std::string& text) {
  switch (p) {
    case Provider::Anthropic:
      return {{"type", "message"}, {"content", {{{"type", "text"}, {"text", text}}}}, {"stop_reason", "end_turn"},
              {"usage", {{"input_tokens", 1}, {"output_tokens", 2}}}};
    case Provider::Gemini:
      return {{"candidates", {{{"content", {{"parts", {{{"text", text}}}}}}, {"finishReason", "STOP"}}}},
              {"usageMetadata", {{"promptTokenCount", 1}, {"candidatesTokenCount", 2}}}};
    case Provider::Local:
      return {{"message", {{"role", "assistant"}, {"content", text}}}, {"done", true}, {"done_reason", "stop"},
              {"prompt_eval_count", 1}, {"eval_count", 2}};
    default:
      return {{"choices", {{{"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 1}, {"completion_tokens", 2}}}};
  }
}

TEST_P(EveryCodec, MinimalSuccess) {
  ChatResult r = decode(200, success_body(GetParam(), "hello").dump());
  EXPECT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(r.text, "hello");
  EXPECT_EQ(r.tokens_input, 1);
  EXPECT_EQ(r.tokens_output, 2);
}

TEST_P(EveryCodec, MalformedJsonOn200) {
  ChatResult r = decode(200, "{\"choices\": [ this is not json ]}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, FailureKind::MalformedResponse);
  EXPECT_EQ(r.error_code, "malformed_response");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_FALSE(r.retryable);
  EXPECT_NE(r.error_message.find("not JSON"), std::string::npos) << r.error_message;
}

TEST_P(EveryCodec, TruncatedBodyOn200) {
  const std::string full = success_body(GetParam(), "hello world").dump();
  ChatResult r = decode(200, full.substr(0, full.size() / 2));
  EXPECT_EQ(r.failure, FailureKind::MalformedResponse);
  EXPECT_FALSE(r.ok);
}

TEST_P(EveryCodec, EmptyBodyOn200) {
  ChatResult r = decode(200, "");
  EXPECT_EQ(r.failure, FailureKind::MalformedResponse);
  EXPECT_EQ(r.error_message, "empty response body");
  ChatResult blank = decode(200, "\n\n  \n");
  EXPECT_EQ(blank.error_message, "empty response body");
}

TEST_P(EveryCodec, NonObjectJsonOn200) {
  for (const char* body : {"[]", "null", "42", "\"ok\""}) {
    ChatResult r = decode(200, body);
    EXPECT_EQ(r.failure, FailureKind::MalformedResponse) << body;
  }
}

TEST_P(EveryCodec, WrongTypesAreReadAsAbsent) {
  // Every field of the right name but the wrong type: no throw, a clear failure.
  json weird = {{"choices", "nope"}, {"content", 5}, {"candidates", {{"content", "x"}}}, {"message", 7},
                {"usage", "lots"}, {"usageMetadata", nullptr}};
  ChatResult r = decode(200, weird.dump());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.failure, FailureKind::None);
  EXPECT_FALSE(r.error_code.empty());
}

TEST_P(EveryCodec, FiveMegabyteSuccess) {
  const std::string text(5 * 1024 * 1024, 'a');
  ChatResult r = decode(200, success_body(GetParam(), text).dump());
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.text.size(), text.size());
}

TEST_P(EveryCodec, FiveMegabyteErrorPageIsExcerpted) {
  std::string page = "<html><body>";
  page.append(5 * 1024 * 1024, 'x');
  ChatResult r = decode(503, page);
  EXPECT_EQ(r.http_status, 503);
  EXPECT_TRUE(r.retryable);
  EXPECT_LE(r.error_message.size(), 203u);
  EXPECT_EQ(r.error_message.substr(0, 12), "<html><body>");
}

TEST_P(EveryCodec, FiveMegabyteJsonErrorMessageIsBounded) {
  json body = {{"error", {{"message", std::string(5 * 1024 * 1024, 'm')}, {"type", "x"}}}};
  ChatResult r = decode(400, body.dump());
  EXPECT_EQ(r.http_status, 400);
  EXPECT_LE(r.error_message.size(), 1003u);
  EXPECT_EQ(r.error_message.substr(0, 3), "mmm");
}

TEST_P(EveryCodec, ErrorWithEmptyBodyKeepsStatus) {
  ChatResult r = decode(429, "");
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.failure, FailureKind::RateLimited);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.error_message, "HTTP 429");
}

TEST_P(EveryCodec, TruncatedErrorBodyKeepsStatus) {
  ChatResult r = decode(401, "{\"error\": {\"message\": \"Invalid API");
  EXPECT_EQ(r.failure, FailureKind::Auth);
  EXPECT_TRUE(r.key_unhealthy);
  EXPECT_EQ(r.error_message, "{\"error\": {\"message\": \"Invalid API");
}

TEST_P(EveryCodec, ForeignJsonErrorIsShownAsIs) {
  ChatResult r = decode(502, "\"Bad gateway\"");
  EXPECT_EQ(r.error_message, "\"Bad gateway\"");
  ChatResult other = decode(500, "{\"detail\": \"upstream died\"}");
  EXPECT_EQ(other.error_message, "{\"detail\": \"upstream died\"}");
  EXPECT_TRUE(other.retryable);
}

TEST_P(EveryCodec, RetryAfterOnAnyProvider) {
  ChatResult r = codec().decode_chat(response(429, "", {{"Retry-After", "3"}}), simple_request("m", "x"));
  EXPECT_EQ(r.retry_after_ms, 3000);
}

TEST_P(EveryCodec, EncodedBodiesAreJsonWithEscapedContent) {
  ChatRequest req = simple_request("m", "quote \" backslash \\ newline \n tab \t nul-free \x01 end");
  HttpRequest http = codec().encode_chat(req, "", "k");
  const json body = json::parse(http.body);
  EXPECT_NE(http.body.find("quote \\\" backslash \\\\ newline \\n tab \\t"), std::string::npos) << http.body;
  EXPECT_NE(http.body.find("\\u0001"), std::string::npos);
  EXPECT_FALSE(body.empty());
}

// A million nested arrays: parsing and destroying must not recurse per level (a stack
// overflow would kill the backend). Parsing is shared by every codec (JsonCodec), so one
// provider shows it; the 2xx and the error paths parse separately.
TEST(CodecRobustness, DeeplyNestedBodyDoesNotCrash) {
  const std::size_t depth = 1'000'000;
  std::string body(depth, '[');
  body.append(depth, ']');
  const ProviderCodec& codec = codec_for(Provider::OpenAI);
  ChatResult r = codec.decode_chat(response(200, body), simple_request("m", "x"));
  EXPECT_EQ(r.failure, FailureKind::MalformedResponse);
  ChatResult err = codec.decode_chat(response(500, body), simple_request("m", "x"));
  EXPECT_EQ(err.failure, FailureKind::ServerError);
  EXPECT_TRUE(err.retryable);
}

INSTANTIATE_TEST_SUITE_P(AllProviders, EveryCodec,
                         ::testing::Values(Provider::OpenAI, Provider::Groq, Provider::DeepSeek, Provider::Anthropic,
                                           Provider::Gemini, Provider::Local),
                         [](const ::testing::TestParamInfo<Provider>& param_info) {
                           return std::string(provider_name(param_info.param));
                         });

}  // namespace
}  // namespace celaest::core
