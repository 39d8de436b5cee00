// Ollama's native chat API (provider "local").
#pragma once

#include <string_view>

#include "core/codec_base.hpp"

namespace celaest::core {

class OllamaCodec final : public JsonCodec {
 public:
  OllamaCodec() : JsonCodec(Provider::Local) {}
  HttpRequest encode_chat(const ChatRequest& request, std::string_view base_url,
                          std::string_view api_key) const override;
  HttpRequest encode_health_check(std::string_view base_url, std::string_view api_key) const override;

 private:
  void read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                    ChatResult& result) const override;
  void read_error(const Json* body, const HttpResponse& response, ChatResult& result) const override;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
