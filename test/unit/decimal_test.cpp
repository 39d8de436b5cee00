#include "core/decimal.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

using celaest::core::decimal_places;
using celaest::core::format_scaled;
using celaest::core::numeric_to_scaled;
using celaest::core::parse_scaled_decimal;

namespace {
// A numeric's bytes after the varlena header: header word(s), then base-10000 digits.
std::vector<unsigned char> numeric_bytes(std::vector<std::uint16_t> words) {
  std::vector<unsigned char> bytes(words.size() * 2);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}
std::optional<std::int64_t> micros(std::vector<std::uint16_t> words) {
  const auto bytes = numeric_bytes(std::move(words));
  return numeric_to_scaled(bytes.data(), bytes.size(), 6);
}
}  // namespace

TEST(NumericToScaled, ReadsTheShortForm) {
  // Short header: 0x8000 | sign 0x2000 | dscale << 7 | 7-bit weight.
  EXPECT_EQ(micros({0x8080, 1, 5000}), 1500000);                 // 1.5
  EXPECT_EQ(micros({0x8000}), 0);                                 // 0
  EXPECT_EQ(micros({0x8000 | 0x2000 | (6 << 7) | 0x7E, 3700}), -37);  // -0.000037 (weight -2)
  EXPECT_EQ(micros({0x8000 | (6 << 7), 1234, 5678, 9100}), 1234567891);  // 1234.567891
  EXPECT_EQ(micros({0x8000 | 1, 12, 3400}), 123400000000);      // 123400 (weight 1)
}

TEST(NumericToScaled, ReadsTheLongForm) {
  // Long header: sign | dscale, then an int16 weight.
  EXPECT_EQ(micros({0x4000 | 6, 0, 1234}), -1234000000);
  EXPECT_EQ(micros({0x0000 | 2, 0xFFFF, 5000}), 500000);  // 0.5, weight -1
}

TEST(NumericToScaled, RefusesWhatIsNotAnExactScaledInteger) {
  EXPECT_EQ(micros({0xC000}), std::nullopt);                    // NaN
  EXPECT_EQ(micros({0xD000}), std::nullopt);                    // +Infinity
  EXPECT_EQ(micros({0x8000 | (8 << 7) | 0x7E, 1}), std::nullopt);  // 0.00000001: beyond 6 decimals
  EXPECT_EQ(micros({0x8000 | 5, 1}), std::nullopt);             // 10^20: too large
}

TEST(ScaledDecimal, ParsesRoundsAndFormats) {
  EXPECT_EQ(parse_scaled_decimal("12", 2), 1200);
  EXPECT_EQ(parse_scaled_decimal(" 7.5 ", 1), 75);
  EXPECT_EQ(parse_scaled_decimal(".25", 2), 25);
  EXPECT_EQ(parse_scaled_decimal("1.", 0), 1);
  EXPECT_EQ(parse_scaled_decimal("0.125", 2), 13);  // half away from zero
  EXPECT_EQ(parse_scaled_decimal("0.124", 2), 12);
  EXPECT_EQ(parse_scaled_decimal("ten", 0), std::nullopt);
  EXPECT_EQ(parse_scaled_decimal("-3", 0), std::nullopt);
  EXPECT_EQ(parse_scaled_decimal("1e3", 0), std::nullopt);
  EXPECT_EQ(parse_scaled_decimal("", 0), std::nullopt);
  EXPECT_EQ(parse_scaled_decimal(".", 0), std::nullopt);
  EXPECT_EQ(decimal_places("7.50"), 2);
  EXPECT_EQ(decimal_places("12"), 0);
  EXPECT_EQ(format_scaled(150, 2), "1.50");
  EXPECT_EQ(format_scaled(-150, 2), "-1.50");
  EXPECT_EQ(format_scaled(5, 3), "0.005");
  EXPECT_EQ(format_scaled(0, 0), "0");
  EXPECT_EQ(format_scaled(123, 0), "123");
}
