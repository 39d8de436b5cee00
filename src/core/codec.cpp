#include "core/codec.hpp"

#include "core/codec_anthropic.hpp"
#include "core/codec_gemini.hpp"
#include "core/codec_ollama.hpp"
#include "core/codec_openai.hpp"
#include "core/failure.hpp"

namespace celaest::core {

bool ProviderCodec::health_ok(const HttpResponse& response) const {
  return response.status >= 200 && response.status < 300;
}

const ProviderCodec& codec_for(Provider provider) {
  // Function-local statics: constructed on first use, thread-safe, no static-init order issues.
  static const OpenAICompatibleCodec openai(Provider::OpenAI);
  static const OpenAICompatibleCodec groq(Provider::Groq);
  static const OpenAICompatibleCodec deepseek(Provider::DeepSeek);
  static const AnthropicCodec anthropic;
  static const GeminiCodec gemini;
  static const OllamaCodec ollama;
  switch (provider) {
    case Provider::Gemini: return gemini;
    case Provider::Groq: return groq;
    case Provider::DeepSeek: return deepseek;
    case Provider::OpenAI: return openai;
    case Provider::Anthropic: return anthropic;
    case Provider::Local: return ollama;
  }
  return openai;  // unreachable: every enumerator is handled above
}

ChatResult transport_failure(bool timed_out, std::string message) {
  ChatResult r;
  set_failure(r, timed_out ? FailureKind::Timeout : FailureKind::Transport);
  r.error_message = bounded_message(message);
  return r;
}

}  // namespace celaest::core
