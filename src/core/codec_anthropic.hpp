// Anthropic Messages API.
#pragma once

#include <string_view>

#include "core/codec_base.hpp"

namespace celaest::core {

class AnthropicCodec final : public JsonCodec {
 public:
  AnthropicCodec() : JsonCodec(Provider::Anthropic) {}
  HttpRequest encode_chat(const ChatRequest& request, std::string_view base_url,
                          std::string_view api_key) const override;
  HttpRequest encode_health_check(std::string_view base_url, std::string_view api_key) const override;

  static constexpr int kDefaultMaxTokens = 1024;  // max_tokens is required by the API
  static constexpr std::string_view kApiVersion = "2023-06-01";

 private:
  void read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                    ChatResult& result) const override;
  void read_error(const Json* body, const HttpResponse& response, ChatResult& result) const override;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
