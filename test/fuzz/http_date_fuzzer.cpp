// parse_http_date on any text: the three RFC 9110 forms, and everything that is not one.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/http_date.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto when = core::parse_http_date(fuzz::as_view(data, size));
  if (when) {
    // A date the parser accepts is a real calendar date: year 0000..9999 at most.
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(when->time_since_epoch()).count();
    CELAEST_FUZZ_CHECK(seconds >= -62167219200LL && seconds <= 253402300799LL);
  }
  return 0;
}
