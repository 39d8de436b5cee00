// parse_json_output on any model text: JSON as a whole, in a markdown fence, or inside prose.
#include <cstddef>
#include <cstdint>

#include "core/json_output.hpp"
#include "fuzz_input.hpp"

using namespace celaest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  const auto parsed = core::parse_json_output(text);
  if (parsed) {
    // Whatever was accepted is a value that serializes again (strings may hold invalid
    // UTF-8 only through a parser bug; replace keeps dump from throwing on such input).
    (void)parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
