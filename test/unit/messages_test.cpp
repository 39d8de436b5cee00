#include "core/messages.hpp"

#include <gtest/gtest.h>

#include "core/json_output.hpp"

namespace celaest::core {
namespace {

TEST(ToAlternating, SystemAnywhereIsCollectedInOrder) {
  auto chat = to_alternating({{"system", "Be brief."}, {"user", "Hi"}, {"system", "Use French."}, {"assistant", "Bonjour"},
                              {"user", "Again"}});
  EXPECT_EQ(chat.system, "Be brief.\n\nUse French.");
  ASSERT_EQ(chat.turns.size(), 3u);
  EXPECT_FALSE(chat.turns[0].assistant);
  EXPECT_EQ(chat.turns[0].content, "Hi");
  EXPECT_TRUE(chat.turns[1].assistant);
  EXPECT_EQ(chat.turns[2].content, "Again");
}

TEST(ToAlternating, MergesNeighboursAndDropsBlanks) {
  auto chat = to_alternating({{"user", "a"}, {"user", "  "}, {"USER", "b"}, {"tool", "c"}, {"assistant", "x"},
                              {"assistant", "y"}, {"user", "d"}});
  ASSERT_EQ(chat.turns.size(), 3u);
  EXPECT_EQ(chat.turns[0].content, "a\n\nb\n\nc");
  EXPECT_EQ(chat.turns[1].content, "x\n\ny");
  EXPECT_EQ(chat.turns[2].content, "d");
}

TEST(ToAlternating, AssistantFirstGetsAPlaceholderUserTurn) {
  auto chat = to_alternating({{"assistant", "Hello, how can I help?"}, {"user", "Tell me a joke"}});
  ASSERT_EQ(chat.turns.size(), 3u);
  EXPECT_FALSE(chat.turns[0].assistant);
  EXPECT_EQ(chat.turns[0].content, kPlaceholderUserTurn);
  EXPECT_TRUE(chat.turns[1].assistant);
}

TEST(ToAlternating, SystemOnlyBecomesTheUserTurn) {
  auto chat = to_alternating({{"system", "Say hi"}});
  EXPECT_EQ(chat.system, "");
  ASSERT_EQ(chat.turns.size(), 1u);
  EXPECT_FALSE(chat.turns[0].assistant);
  EXPECT_EQ(chat.turns[0].content, "Say hi");
}

TEST(ToAlternating, FinalAssistantPrefillLosesTrailingWhitespace) {
  auto chat = to_alternating({{"user", "List"}, {"assistant", "1. \n"}});
  EXPECT_EQ(chat.turns.back().content, "1.");
}

TEST(MentionsJson, AnyCaseAnyMessage) {
  EXPECT_TRUE(mentions_json({{"system", "x"}, {"user", "give me Json"}}));
  EXPECT_FALSE(mentions_json({{"user", "give me a list"}}));
  EXPECT_TRUE(mentions_json({{"user", std::string(kJsonInstruction)}}));
}

TEST(ParseJsonOutput, LenientAboutFencesAndProse) {
  EXPECT_EQ(parse_json_output(" {\"a\":1} ")->at("a"), 1);
  EXPECT_EQ(parse_json_output("```json\n{\"a\":2}\n```")->at("a"), 2);
  EXPECT_EQ(parse_json_output("```\n[1,2]\n```")->size(), 2u);
  EXPECT_EQ(parse_json_output("Here it is: {\"a\":3}. Enjoy!")->at("a"), 3);
  EXPECT_FALSE(parse_json_output("no json here").has_value());
  EXPECT_FALSE(parse_json_output("{\"a\":").has_value());
  EXPECT_FALSE(parse_json_output("").has_value());
}

}  // namespace
}  // namespace celaest::core
