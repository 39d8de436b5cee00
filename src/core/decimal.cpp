#include "core/decimal.hpp"

#include <cstring>
#include <stdexcept>

namespace celaest::core {

namespace {

// numeric.c's header bits.
constexpr std::uint16_t kSignMask = 0xC000;
constexpr std::uint16_t kNegative = 0x4000;
constexpr std::uint16_t kShort = 0x8000;
constexpr std::uint16_t kSpecial = 0xC000;
constexpr std::uint16_t kShortSignMask = 0x2000;
constexpr std::uint16_t kShortWeightSignMask = 0x0040;
constexpr std::uint16_t kShortWeightMask = 0x003F;
constexpr int kDigitsPerWord = 4;  // NBASE 10000

bool times_power_of_ten(std::int64_t* value, int exponent) {
  for (int i = 0; i < exponent; ++i)
    if (__builtin_mul_overflow(*value, 10, value)) return false;
  return true;
}

}  // namespace

std::optional<std::int64_t> numeric_to_scaled(const unsigned char* data, std::size_t size, int scale) {
  if (size < sizeof(std::uint16_t)) return std::nullopt;
  std::uint16_t header = 0;
  std::memcpy(&header, data, sizeof header);
  bool negative = false;
  int weight = 0;
  std::size_t header_size = 0;
  if ((header & kSignMask) == kSpecial) return std::nullopt;  // NaN, ±Infinity
  if ((header & kSignMask) == kShort) {
    negative = (header & kShortSignMask) != 0;
    // A 7-bit two's-complement weight: sign bit 0x40, value bits 0x3F.
    weight = (header & kShortWeightMask) - ((header & kShortWeightSignMask) ? 64 : 0);
    header_size = sizeof(std::uint16_t);
  } else {
    if (size < 2 * sizeof(std::uint16_t)) return std::nullopt;
    negative = (header & kSignMask) == kNegative;
    std::int16_t long_weight = 0;
    std::memcpy(&long_weight, data + sizeof header, sizeof long_weight);
    weight = long_weight;
    header_size = 2 * sizeof(std::uint16_t);
  }
  const std::size_t digits = (size - header_size) / sizeof(std::uint16_t);
  std::int64_t result = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    std::uint16_t digit = 0;
    std::memcpy(&digit, data + header_size + i * sizeof digit, sizeof digit);
    if (digit == 0) continue;
    // This word is worth digit * 10^(4 * (weight - i)); scaled: 10^(4 * (weight - i) + scale).
    const int exponent = kDigitsPerWord * (weight - static_cast<int>(i)) + scale;
    std::int64_t part = digit;
    if (exponent >= 0) {
      if (!times_power_of_ten(&part, exponent)) return std::nullopt;
    } else {
      for (int k = 0; k < -exponent; ++k) {
        if (part % 10 != 0) return std::nullopt;  // a decimal beyond `scale`
        part /= 10;
      }
    }
    if (__builtin_add_overflow(result, part, &result)) return std::nullopt;
  }
  return negative ? -result : result;
}

int decimal_places(std::string_view text) {
  const auto point = text.find('.');
  if (point == std::string_view::npos) return 0;
  int places = 0;
  for (std::size_t i = point + 1; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) ++places;
  return places;
}

std::optional<Int128> parse_scaled_decimal(std::string_view text, int scale) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  const Int128 limit = static_cast<Int128>(1) << 120;  // leaves room for sums of many of them
  Int128 value = 0;
  int decimals = -1;  // -1: before the point
  bool any_digit = false;
  bool round_up = false;
  bool rounding_digit_seen = false;
  for (char c : text) {
    if (c == '.') {
      if (decimals >= 0) return std::nullopt;
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    any_digit = true;
    if (decimals >= scale) {  // beyond the scale: only the first such digit decides the rounding
      if (!rounding_digit_seen) round_up = c >= '5';
      rounding_digit_seen = true;
      continue;
    }
    value = value * 10 + (c - '0');
    if (value > limit) return std::nullopt;
    if (decimals >= 0) ++decimals;
  }
  if (!any_digit) return std::nullopt;
  for (int i = decimals < 0 ? 0 : decimals; i < scale; ++i) {
    value *= 10;
    if (value > limit) return std::nullopt;
  }
  return round_up ? value + 1 : value;
}

std::string format_scaled(Int128 value, int scale) {
  const bool negative = value < 0;
  // Digits of the magnitude, least significant first (unsigned: the most negative value too).
  unsigned __int128 magnitude = negative ? -static_cast<unsigned __int128>(value) : static_cast<unsigned __int128>(value);
  std::string digits;
  while (magnitude > 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  while (static_cast<int>(digits.size()) < scale + 1) digits.push_back('0');
  std::string text = negative ? "-" : "";
  for (std::size_t i = digits.size(); i-- > 0;) {
    text.push_back(digits[i]);
    if (scale > 0 && i == static_cast<std::size_t>(scale)) text.push_back('.');
  }
  return text;
}

namespace {

// 10^0 .. 10^38 (a table: Int128 arithmetic is slow).
struct PowersOfTen {
  Int128 value[39];
  PowersOfTen() {
    value[0] = 1;
    for (int i = 1; i < 39; ++i) value[i] = value[i - 1] * 10;
  }
};
const PowersOfTen kPowersOfTen;

}  // namespace

Int128 power_of_ten(int exponent) {
  if (exponent < 0 || exponent > 38) throw std::overflow_error("a power of ten beyond 128 bits");
  return kPowersOfTen.value[exponent];
}

}  // namespace celaest::core
