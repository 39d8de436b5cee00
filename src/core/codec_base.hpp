// The part every codec shares: request scaffolding and the decode skeleton (status split,
// lenient parse, never-throw, output checks). Concrete codecs fill in the provider parts.
#pragma once

#include <string>
#include <string_view>

#include "core/codec.hpp"
#include "core/json_util.hpp"

namespace celaest::core {

class JsonCodec : public ProviderCodec {
 public:
  explicit JsonCodec(Provider provider) : provider_(provider) {}
  Provider provider() const override { return provider_; }
  ChatResult decode_chat(const HttpResponse& response, const ChatRequest& request) const final;

 protected:
  // The base URL to use: the given one, or the provider's default when empty.
  std::string_view base_or_default(std::string_view base_url) const;

  // POST with a JSON body, Content-Type and Accept set; callers add auth headers.
  static HttpRequest post_json(std::string url, std::string body);
  static HttpRequest get(std::string url);

 private:
  // A 2xx JSON body: fill text, finish_reason, usage, ids; or set a failure for a reply
  // that carries no usable answer (blocked, refusal, ...). Usage is read either way.
  virtual void read_success(const Json& body, const HttpResponse& response, const ChatRequest& request,
                            ChatResult& result) const = 0;

  // A non-2xx reply. `result` is already classified by status, with retry_after_ms from
  // the headers; `body` is the parsed error body or nullptr if it was not JSON.
  virtual void read_error(const Json* body, const HttpResponse& response, ChatResult& result) const = 0;

  Provider provider_;
};

// Empty/blank text → empty_output; JSON mode with text that is not JSON →
// invalid_json_output; otherwise ok. Applied after read_success found no failure.
void check_output(ChatResult& result, const ChatRequest& request);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
