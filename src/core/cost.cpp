#include "core/cost.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "core/text.hpp"

namespace celaest::core {
namespace {

// Tokens (up to 1e18) times a price in millionths (up to 1e10) needs 128 bits. A GCC/Clang
// extension on 64-bit targets; __extension__ keeps -Wpedantic quiet about it.
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

// Integer division rounding half away from zero.
i128 div_round(i128 numerator, i128 denominator) {
  const i128 half = denominator / 2;
  return numerator >= 0 ? (numerator + half) / denominator : -((-numerator + half) / denominator);
}

long long to_ll_saturated(i128 v) {
  constexpr auto kMax = std::numeric_limits<long long>::max();
  constexpr auto kMin = std::numeric_limits<long long>::min();
  if (v > kMax) return kMax;
  if (v < kMin) return kMin;
  return static_cast<long long>(v);
}

long long price_or_throw(std::string_view price) {
  if (is_blank(price)) return 0;
  auto micro = parse_price_micro(price);
  if (!micro) throw std::invalid_argument("not a decimal price: \"" + std::string(price) + "\"");
  return *micro;
}

}  // namespace

std::optional<long long> parse_price_micro(std::string_view price) {
  price = trim(price);
  bool negative = false;
  if (!price.empty() && (price.front() == '-' || price.front() == '+')) {
    negative = price.front() == '-';
    price.remove_prefix(1);
  }
  long long whole = 0, frac = 0;
  int frac_digits = 0;
  bool any_digit = false, round_up = false, seen_point = false;
  for (char c : price) {
    if (c == '.' && !seen_point) {
      seen_point = true;
      continue;
    }
    if (!ascii_digit(c)) return std::nullopt;
    any_digit = true;
    const int d = c - '0';
    if (!seen_point) {
      if (whole > 1'000'000'000'000LL) return std::nullopt;  // far beyond DECIMAL(10,6)
      whole = whole * 10 + d;
    } else if (frac_digits < 6) {
      frac = frac * 10 + d;
      ++frac_digits;
    } else if (frac_digits == 6) {
      round_up = d >= 5;  // only the 7th digit decides half-away-from-zero
      ++frac_digits;
    }
  }
  if (!any_digit) return std::nullopt;
  for (int i = std::min(frac_digits, 6); i < 6; ++i) frac *= 10;
  long long micro = whole * 1'000'000 + frac + (round_up ? 1 : 0);
  return negative ? -micro : micro;
}

long long cost_micro_usd(long long tok_in, long long tok_out, std::string_view price_in_per_1k,
                         std::string_view price_out_per_1k) {
  const i128 total = static_cast<i128>(tok_in) * price_or_throw(price_in_per_1k) +
                     static_cast<i128>(tok_out) * price_or_throw(price_out_per_1k);
  // tokens x (millionths of a dollar per 1000 tokens) / 1000 = micro-dollars.
  return to_ll_saturated(div_round(total, 1000));
}

long long cost_nano_usd(long long tok_in, long long tok_out, std::string_view price_in_per_1k,
                        std::string_view price_out_per_1k) {
  // tokens x (millionths of a dollar per 1000 tokens) = nano-dollars.
  return to_ll_saturated(static_cast<i128>(tok_in) * price_or_throw(price_in_per_1k) +
                         static_cast<i128>(tok_out) * price_or_throw(price_out_per_1k));
}

long long micro_usd_from_nano(long long nano) { return to_ll_saturated(div_round(nano, 1000)); }

std::string format_micro_usd(long long micro) {
  const bool negative = micro < 0;
  // Work in unsigned 128 bits so that LLONG_MIN negates cleanly.
  u128 magnitude = negative ? static_cast<u128>(-static_cast<i128>(micro)) : static_cast<u128>(micro);
  std::string frac(6, '0');
  for (int i = 5; i >= 0; --i) {
    frac[static_cast<std::size_t>(i)] = static_cast<char>('0' + static_cast<int>(magnitude % 10));
    magnitude /= 10;
  }
  std::string whole;
  do {
    whole.insert(whole.begin(), static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  } while (magnitude > 0);
  return (negative ? "-" : "") + whole + "." + frac;
}

}  // namespace celaest::core
