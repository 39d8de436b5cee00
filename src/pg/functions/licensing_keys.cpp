// generate_license_key() (src/sql/21_licensing_keys.sql): 64 lowercase hex characters from the
// server's strong random source.
#include "pg/boundary/boundary.hpp"

extern "C" {
#include "port.h"
#include "utils/builtins.h"
}

#include <array>

CELAEST_FUNCTION(celaest_generate_license_key) {
  std::array<unsigned char, 32> random_bytes{};
  if (!pg_strong_random(random_bytes.data(), random_bytes.size()))
    throw celaest::pg::Error(ERRCODE_INTERNAL_ERROR, "could not generate random bytes for a license key");
  static constexpr char kHex[] = "0123456789abcdef";
  char hex_text[65];
  for (size_t i = 0; i < random_bytes.size(); ++i) {
    hex_text[2 * i] = kHex[random_bytes[i] >> 4];
    hex_text[2 * i + 1] = kHex[random_bytes[i] & 0x0f];
  }
  hex_text[64] = '\0';
  return celaest::pg::pg_guarded([&] { return PointerGetDatum(cstring_to_text(hex_text)); });
}
