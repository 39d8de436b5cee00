// Exact decimal amounts as scaled integers, for the ROI scan: a numeric read straight from
// PostgreSQL's binary form (no allocation per task row), and decimal text in and out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace celaest::core {

__extension__ typedef __int128 Int128;

// The value of a numeric whose bytes (after the varlena header) are `data`, times 10^scale,
// when that is an integer that fits in int64; nullopt otherwise (NaN, ±Infinity, more
// decimals than `scale` that are not zero, or too large). The layout is PostgreSQL's on-disk
// format (src/backend/utils/adt/numeric.c: short and long headers, base-10000 digits in host
// byte order), which cannot change without breaking pg_upgrade.
std::optional<std::int64_t> numeric_to_scaled(const unsigned char* data, std::size_t size, int scale);

// "12", "7.5", " 0.125 ": non-negative decimal text, times 10^scale; more decimals than
// `scale` are rounded half away from zero. nullopt when it is not such a number or does not fit.
std::optional<Int128> parse_scaled_decimal(std::string_view text, int scale);

// Digits after the decimal point in non-negative decimal text ("7.50" -> 2, "12" -> 0).
int decimal_places(std::string_view text);

// 10^exponent for exponent 0..38 (the powers of ten within 128 bits); std::overflow_error
// otherwise.
Int128 power_of_ten(int exponent);

// value / 10^scale as decimal text with exactly `scale` decimals ("-1.50" for -150, 2).
std::string format_scaled(Int128 value, int scale);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
