// Google Gemini API (generativelanguage.googleapis.com), generateContent.
#pragma once

#include <string>
#include <string_view>

#include "core/codec_base.hpp"

namespace celaest::core {

class GeminiCodec final : public JsonCodec {
 public:
  GeminiCodec() : JsonCodec(Provider::Gemini) {}
  HttpRequest encode_chat(const ChatRequest& request, std::string_view base_url,
                          std::string_view api_key) const override;
  HttpRequest encode_health_check(std::string_view base_url, std::string_view api_key) const override;

 private:
  void read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                    ChatResult& result) const override;
  void read_error(const Json* body, const HttpResponse& response, ChatResult& result) const override;
};

// "gemini-2.0-flash" or "models/gemini-2.0-flash" → "models/gemini-2.0-flash:generateContent".
std::string gemini_generate_path(std::string_view model);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
