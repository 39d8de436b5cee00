// Inputs the fuzz targets in test/fuzz found to break the core, each kept as a plain test
// so the fix stays fixed without running the fuzzer.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/codec.hpp"
#include "core/http_date.hpp"
#include "core/json_output.hpp"
#include "core/json_util.hpp"
#include "core/retry_hint.hpp"
#include "core/template.hpp"

namespace celaest::core {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// fuzz http_date: a year past 2262 does not fit system_clock's 64-bit nanoseconds; the
// conversion overflowed (UBSan: signed multiplication overflow in duration_cast).
TEST(FuzzFindings, HttpDateBeyondTheClockRangeIsRejected) {
  EXPECT_FALSE(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").has_value());
  EXPECT_FALSE(parse_http_date("Sat, 12 Apr 2262 00:00:00 GMT").has_value());
  // The last representable day still parses.
  EXPECT_EQ(parse_http_date("Fri, 11 Apr 2262 00:00:00 GMT"), system_clock::time_point(seconds(9223286400LL)));
}

// fuzz retry_hint: the same overflow reached through a Retry-After header; such a hint is
// ignored like any other unreadable one.
TEST(FuzzFindings, RetryAfterWithAFarFutureDateIsIgnored) {
  const system_clock::time_point now{seconds(1700000000)};
  EXPECT_FALSE(retry_after_ms({{"Retry-After", "Wed, 21 Oct 4030 07:28:00 GMT"}}, now).has_value());
}

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// json_output (its target serializes what it accepts, as the call path does on the way to
// jsonb): nlohmann's dump recurses per level, so a JSON-mode reply of 100,000 '[' parsed
// fine and then overflowed the stack when serialized — a backend crash from a provider reply.
TEST(FuzzFindings, JsonOutputRefusesNestingTooDeepToSerialize) {
  EXPECT_FALSE(parse_json_output(nested_arrays(100000)).has_value());
  EXPECT_FALSE(parse_json_output("```json\n" + nested_arrays(100000) + "\n```").has_value());
  EXPECT_FALSE(parse_json_output("Here: " + nested_arrays(kMaxJsonOutputDepth + 1) + " done").has_value());
  const auto deepest_allowed = parse_json_output(nested_arrays(kMaxJsonOutputDepth));
  ASSERT_TRUE(deepest_allowed.has_value());
  EXPECT_EQ(deepest_allowed->dump().size(), 2 * kMaxJsonOutputDepth);
  // Brackets inside strings are text, not nesting.
  const std::string brackets(5000, '[');
  const auto in_string = parse_json_output(R"({"a": ")" + brackets + R"(", "b": [1, {"c": "]]}"}]})");
  ASSERT_TRUE(in_string.has_value());
  EXPECT_EQ((*in_string)["a"], brackets);
}

// The same reply through a codec in JSON mode: not JSON output we accept, and no crash.
TEST(FuzzFindings, DeeplyNestedJsonModeReplyIsInvalidJsonOutput) {
  ChatRequest request;
  request.model = "m";
  request.messages = {{"user", "json please"}};
  request.json_mode = true;
  HttpResponse response;
  response.status = 200;
  response.body = R"({"choices":[{"message":{"role":"assistant","content":")" + nested_arrays(100000) +
                  R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}})";
  const ChatResult r = codec_for(Provider::OpenAI).decode_chat(response, request);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, "invalid_json_output");
}

// template: every "{{" that was not a placeholder rescanned up to the same far "}}", so a
// template made of "{{" took quadratic time (600 kB: over 6 s of backend CPU per render,
// no interrupt possible); and each missing name was looked up in a vector of all earlier
// ones. Both inputs render in milliseconds now; CTest's 60 s timeout is the backstop.
TEST(FuzzFindings, TemplateOfManyOpeningBracesRendersInLinearTime) {
  std::string tpl;
  for (int i = 0; i < 300000; ++i) tpl += "{{ ";
  tpl += "}}";
  const RenderResult r = render_template(tpl, nlohmann::json::object());
  EXPECT_EQ(r.text, tpl);
  EXPECT_TRUE(r.missing.empty());
  // The last "{{" before a clean span is still a placeholder.
  EXPECT_EQ(render_template("{{ {{ {{ x }}", {{"x", "1"}}).text, "{{ {{ 1");
  EXPECT_EQ(render_template("{{{x}}}", {{"x", "1"}}).text, "{1}");
  EXPECT_EQ(render_template("{{a b}} {{ }} {{x}}", {{"x", "1"}}).text, "{{a b}} {{ }} 1");
}

TEST(FuzzFindings, TemplateWithManyDistinctMissingNamesRendersInLinearTime) {
  std::string tpl;
  for (int i = 0; i < 100000; ++i) tpl += "{{v" + std::to_string(i) + "}}";
  const RenderResult r = render_template(tpl, nlohmann::json::object());
  EXPECT_EQ(r.text, tpl);
  ASSERT_EQ(r.missing.size(), 100000u);
  EXPECT_EQ(r.missing.front(), "v0");
  EXPECT_EQ(r.missing.back(), "v99999");
}

}  // namespace
}  // namespace celaest::core

TEST(FuzzFindings, TokenCountsAreNeverNegativeNorOverflow) {
  // decode_openai found "completion_tokens": -9 taken as it was: a negative cost, a key's
  // tokens_used going down. Negative counts read as 0; absurd ones are capped, so that sums of
  // counts (Anthropic's input + cache tokens) cannot overflow.
  celaest::core::HttpResponse response;
  response.status = 200;
  response.body = R"({"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,)"
                  R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
                  R"("usage":{"prompt_tokens":5,"completion_tokens":-9}})";
  celaest::core::ChatRequest request;
  request.model = "gpt-4o-mini";
  request.messages = {{"user", "hello"}};
  celaest::core::ChatResult result = celaest::core::codec_for(celaest::core::Provider::OpenAI).decode_chat(response, request);
  EXPECT_EQ(result.tokens_input, 5);
  EXPECT_EQ(result.tokens_output, 0);

  response.body = R"({"id":"m","type":"message","role":"assistant","model":"claude","content":[{"type":"text",)"
                  R"("text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":9223372036854775807,)"
                  R"("cache_creation_input_tokens":9223372036854775807,"cache_read_input_tokens":1e300,)"
                  R"("output_tokens":"-4"}})";
  result = celaest::core::codec_for(celaest::core::Provider::Anthropic).decode_chat(response, request);
  EXPECT_EQ(result.tokens_input, 3 * celaest::core::kMaxCount);
  EXPECT_EQ(result.tokens_output, 0);
}
