// OpenAI Chat Completions and the providers that copy it (Groq, DeepSeek).
#pragma once

#include <string_view>

#include "core/codec_base.hpp"

namespace celaest::core {

class OpenAICompatibleCodec final : public JsonCodec {
 public:
  explicit OpenAICompatibleCodec(Provider provider) : JsonCodec(provider) {}
  HttpRequest encode_chat(const ChatRequest& request, std::string_view base_url,
                          std::string_view api_key) const override;
  HttpRequest encode_health_check(std::string_view base_url, std::string_view api_key) const override;

 private:
  void read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                    ChatResult& result) const override;
  void read_error(const Json* body, const HttpResponse& response, ChatResult& result) const override;
};

// OpenAI reasoning models (o1, o3, o4, gpt-5 families) reject max_tokens and any
// temperature/top_p other than the default.
bool is_openai_reasoning_model(std::string_view model);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
