#include "core/provider.hpp"

#include <gtest/gtest.h>

#include "core/codec.hpp"

namespace celaest::core {
namespace {

TEST(Provider, NamesRoundTripInEnumOrder) {
  const char* names[] = {"gemini", "groq", "deepseek", "openai", "anthropic", "local"};
  for (int i = 0; i < 6; ++i) {
    auto p = provider_from_name(names[i]);
    ASSERT_TRUE(p.has_value()) << names[i];
    EXPECT_EQ(static_cast<int>(*p), i) << "enum order must match ai_provider";
    EXPECT_EQ(provider_name(*p), names[i]);
  }
}

TEST(Provider, NameLookupIsCaseInsensitiveAndRejectsUnknown) {
  EXPECT_EQ(provider_from_name("OpenAI"), Provider::OpenAI);
  EXPECT_EQ(provider_from_name("ANTHROPIC"), Provider::Anthropic);
  EXPECT_FALSE(provider_from_name("ollama").has_value());
  EXPECT_FALSE(provider_from_name("").has_value());
  EXPECT_FALSE(provider_from_name("openai ").has_value());
}

TEST(Provider, DefaultBaseUrlsMatchProvidersDoc) {
  EXPECT_EQ(default_base_url(Provider::OpenAI), "https://api.openai.com/v1");
  EXPECT_EQ(default_base_url(Provider::Groq), "https://api.groq.com/openai/v1");
  EXPECT_EQ(default_base_url(Provider::DeepSeek), "https://api.deepseek.com");
  EXPECT_EQ(default_base_url(Provider::Anthropic), "https://api.anthropic.com");
  EXPECT_EQ(default_base_url(Provider::Gemini), "https://generativelanguage.googleapis.com/v1beta");
  EXPECT_EQ(default_base_url(Provider::Local), "http://localhost:11434");
}

TEST(Provider, CodecForReportsItsProvider) {
  for (Provider p : {Provider::Gemini, Provider::Groq, Provider::DeepSeek, Provider::OpenAI, Provider::Anthropic,
                     Provider::Local}) {
    EXPECT_EQ(codec_for(p).provider(), p);
  }
  EXPECT_EQ(&codec_for(Provider::OpenAI), &codec_for(Provider::OpenAI)) << "one instance per provider";
}

TEST(Provider, EmptyBaseUrlMeansDefault) {
  ChatRequest req;
  req.model = "m";
  req.messages = {{"user", "hi"}};
  EXPECT_EQ(codec_for(Provider::DeepSeek).encode_chat(req, "", "k").url, "https://api.deepseek.com/chat/completions");
  EXPECT_EQ(codec_for(Provider::Anthropic).encode_chat(req, "  ", "k").url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(codec_for(Provider::Local).encode_health_check("", "").url, "http://localhost:11434/api/tags");
}

}  // namespace
}  // namespace celaest::core
