// A provider codec turns a ChatRequest into the provider's HTTP request and the provider's
// HTTP response into a ChatResult. Pure: no I/O, no clock except for HTTP-date hints.
#pragma once

#include <string>
#include <string_view>

#include "core/chat.hpp"
#include "core/provider.hpp"

namespace celaest::core {

class ProviderCodec {
 public:
  virtual ~ProviderCodec() = default;

  virtual Provider provider() const = 0;

  // base_url: the provider's documented base (PROVIDERS.md §1), with or without a trailing
  // slash; empty means default_base_url(provider()). api_key goes into a header only.
  virtual HttpRequest encode_chat(const ChatRequest& request, std::string_view base_url,
                                  std::string_view api_key) const = 0;

  // The cheapest authenticated call (a model list): a GET without body.
  virtual HttpRequest encode_health_check(std::string_view base_url, std::string_view api_key) const = 0;

  // Never throws. `request` is the one that was encoded (JSON mode, Anthropic prefill).
  virtual ChatResult decode_chat(const HttpResponse& response, const ChatRequest& request) const = 0;

  // True for 2xx.
  virtual bool health_ok(const HttpResponse& response) const;
};

// One stateless, thread-safe instance per provider; lives for the whole process.
const ProviderCodec& codec_for(Provider provider);

// A call that got no HTTP response: connection failures and timeouts. Both retryable.
ChatResult transport_failure(bool timed_out, std::string message);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
