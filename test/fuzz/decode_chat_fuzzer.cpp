// decode_chat and health_ok of one provider codec (CELAEST_FUZZ_PROVIDERS, set per target
// in CMakeLists.txt) on any HTTP response: must never throw, never touch memory it does not
// own, and always say what happened.
#include <cstddef>
#include <cstdint>

#include "core/codec.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

namespace {

void check_result(const core::ChatResult& r, const core::HttpResponse& response) {
  // ok and the failure side agree.
  CELAEST_FUZZ_CHECK(r.ok == (r.failure == core::FailureKind::None));
  if (!r.ok) {
    CELAEST_FUZZ_CHECK(!r.error_code.empty());
    CELAEST_FUZZ_CHECK(!r.error_message.empty());
  }
  // Only a 2xx can succeed; the status is always recorded.
  if (r.ok) CELAEST_FUZZ_CHECK(response.status >= 200 && response.status < 300);
  CELAEST_FUZZ_CHECK(r.http_status == response.status);
  // Messages are bounded (failure.cpp: 1000 bytes), whatever the body's size; a little
  // room for the codec's own prefix ("response is not JSON: " + 200-byte excerpt).
  CELAEST_FUZZ_CHECK(r.error_message.size() <= 1100);
  if (r.retry_after_ms) CELAEST_FUZZ_CHECK(*r.retry_after_ms >= 0);
  CELAEST_FUZZ_CHECK(r.tokens_input >= 0 && r.tokens_output >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const core::HttpResponse response = fuzz::parse_response(fuzz::as_view(data, size));
  for (core::Provider provider : {CELAEST_FUZZ_PROVIDERS}) {
    const core::ProviderCodec& codec = core::codec_for(provider);
    core::ChatRequest request;
    request.model = "fuzz-model";
    request.messages = {{"user", "hello"}};
    check_result(codec.decode_chat(response, request), response);
    // JSON mode reads the text again (and, for Anthropic, the "{" prefill joins it).
    request.json_mode = true;
    check_result(codec.decode_chat(response, request), response);
    const bool healthy = codec.health_ok(response);
    CELAEST_FUZZ_CHECK(healthy == (response.status >= 200 && response.status < 300));
  }
  return 0;
}
