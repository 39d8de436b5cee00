#include "core/call_options.hpp"

#include <gtest/gtest.h>

using celaest::core::InvalidOption;
using celaest::core::parse_call_options;
using nlohmann::json;
namespace core = celaest::core;

TEST(CallOptions, EmptyAndNullGiveDefaults) {
  auto options = parse_call_options(json::object());
  EXPECT_FALSE(options.model);
  EXPECT_FALSE(options.json_mode);
  EXPECT_FALSE(options.raise_on_failure);
  EXPECT_FALSE(parse_call_options(json()).temperature);
}

TEST(CallOptions, ParsesEveryKnownOption) {
  auto options = parse_call_options(json::parse(
      R"({"model":"gpt-4o-mini","provider":"openai","temperature":0.2,"max_tokens":64,"top_p":0.9,
          "json":true,"timeout_ms":1500,"request_id":"req-1","raise":"true","unknown":1})"));
  EXPECT_EQ(*options.model, "gpt-4o-mini");
  EXPECT_EQ(*options.provider, "openai");
  EXPECT_DOUBLE_EQ(*options.temperature, 0.2);
  EXPECT_EQ(*options.max_tokens, 64);
  EXPECT_DOUBLE_EQ(*options.top_p, 0.9);
  EXPECT_TRUE(options.json_mode);
  EXPECT_EQ(*options.timeout_ms, 1500);
  EXPECT_EQ(*options.request_id, "req-1");
  EXPECT_TRUE(options.raise_on_failure);
}

TEST(CallOptions, NumbersAsStringsAreAccepted) {
  auto options = parse_call_options(json::parse(R"({"temperature":"0.5","max_tokens":"10"})"));
  EXPECT_DOUBLE_EQ(*options.temperature, 0.5);
  EXPECT_EQ(*options.max_tokens, 10);
}

TEST(CallOptions, RejectionsNameTheOptionAndValue) {
  try {
    parse_call_options(json::parse(R"({"temperature":3})"));
    FAIL() << "temperature 3 accepted";
  } catch (const InvalidOption& e) {
    EXPECT_NE(std::string(e.what()).find("\"temperature\": 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_call_options(json::parse(R"({"max_tokens":0})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"({"max_tokens":1.5})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"({"json":"yes"})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"({"top_p":-0.1})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"({"model":""})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"({"timeout_ms":"soon"})")), InvalidOption);
  EXPECT_THROW(parse_call_options(json::parse(R"([1,2])")), InvalidOption);
}

TEST(CallOptions, FallbackDefaultsDependOnWhetherAModelWasNamed) {
  EXPECT_TRUE(core::falls_back_automatically(core::parse_call_options(nlohmann::json::object())));
  EXPECT_FALSE(core::falls_back_automatically(core::parse_call_options({{"model", "gpt-4o-mini"}})));
  EXPECT_TRUE(core::falls_back_automatically(core::parse_call_options({{"model", "gpt-4o-mini"}, {"fallback", true}})));
  EXPECT_FALSE(core::falls_back_automatically(core::parse_call_options({{"fallback", "false"}})));
  auto parsed = core::parse_call_options({{"fallback_models", {"a", "b"}}});
  EXPECT_EQ(parsed.fallback_models, (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(core::parse_call_options({{"fallback_models", "a"}}), core::InvalidOption);
  EXPECT_THROW(core::parse_call_options({{"fallback_models", {"a", 3}}}), core::InvalidOption);
  EXPECT_THROW(core::parse_call_options({{"fallback", 1}}), core::InvalidOption);
}
