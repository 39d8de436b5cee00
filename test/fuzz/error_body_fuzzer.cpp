// The error-body side: every codec's non-2xx path (read_error: the provider's error shape,
// Gemini's RetryInfo, Anthropic's error types) under each status that classifies
// differently, and failure.hpp's bounding of what gets stored.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "core/codec.hpp"
#include "core/failure.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

namespace {

constexpr long kStatuses[] = {400, 401, 402, 403, 404, 408, 409, 413, 422, 429,
                              498, 500, 502, 503, 504, 529, 302, 418, 599, 999};
constexpr core::Provider kProviders[] = {core::Provider::OpenAI, core::Provider::Groq, core::Provider::DeepSeek,
                                         core::Provider::Anthropic, core::Provider::Gemini, core::Provider::Local};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = fuzz::as_view(data, size);
  // An input in the corpus format with an error status keeps its status and headers; a
  // bare body (or a 2xx, which is not this target's business) is tried under every status.
  core::HttpResponse response = fuzz::parse_response(input);
  std::vector<long> statuses(std::begin(kStatuses), std::end(kStatuses));
  if (response.status < 200 || response.status >= 300) statuses = {response.status};

  const std::string excerpt = core::body_excerpt(response.body);
  CELAEST_FUZZ_CHECK(excerpt.size() <= 200 + 3);  // + "..." when cut (truncate_utf8)
  const std::string bounded = core::bounded_message(response.body);
  CELAEST_FUZZ_CHECK(bounded.size() <= 1000 + 3);

  for (core::Provider provider : kProviders) {
    const core::ProviderCodec& codec = core::codec_for(provider);
    core::ChatRequest request;
    request.model = "fuzz-model";
    request.messages = {{"user", "hello"}};
    for (long status : statuses) {
      response.status = status;
      const core::ChatResult r = codec.decode_chat(response, request);
      CELAEST_FUZZ_CHECK(!r.ok);
      CELAEST_FUZZ_CHECK(r.failure != core::FailureKind::None);
      CELAEST_FUZZ_CHECK(!r.error_code.empty());
      CELAEST_FUZZ_CHECK(!r.error_message.empty());
      CELAEST_FUZZ_CHECK(r.error_message.size() <= 1100);
      CELAEST_FUZZ_CHECK(r.http_status == response.status);
      if (r.retry_after_ms) CELAEST_FUZZ_CHECK(*r.retry_after_ms >= 0);
    }
  }
  return 0;
}
