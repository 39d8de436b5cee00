#include "core/duration.hpp"

#include <cstdint>

#include "core/text.hpp"

namespace celaest::core {
namespace {

using u64 = std::uint64_t;
__extension__ typedef unsigned __int128 u128;  // GCC/Clang extension; see fraction_ns
constexpr u64 kNsPerMs = 1'000'000;
// ~100 years: far beyond any sensible hint, far below u64 overflow in the sums below.
constexpr u64 kMaxNs = 100ULL * 366 * 24 * 3600 * 1'000'000'000ULL;

struct Unit {
  std::string_view suffix;
  u64 ns;
};

// Longest suffixes first so that "ms" is not read as "m" followed by junk.
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // U+00B5 micro sign, as Go prints it
    {"\xCE\xBCs", 1'000},  // U+03BC greek mu, also accepted by Go
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60ULL * 1'000'000'000},
    {"h", 3600ULL * 1'000'000'000},
};

// Reads digits[.digits] at text[pos], advancing pos; false if there was no digit at all.
struct Number {
  u64 whole = 0;
  u64 frac = 0;        // fractional digits as an integer
  u64 frac_scale = 1;  // 10^(number of fractional digits kept)
};

bool read_number(std::string_view text, std::size_t& pos, Number& n) {
  bool any = false;
  while (pos < text.size() && ascii_digit(text[pos])) {
    if (n.whole > kMaxNs) return false;
    n.whole = n.whole * 10 + static_cast<u64>(text[pos] - '0');
    ++pos;
    any = true;
  }
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && ascii_digit(text[pos])) {
      // Beyond 1e-12 of a unit nothing changes the millisecond result; stop accumulating.
      if (n.frac_scale < 1'000'000'000'000ULL) {
        n.frac = n.frac * 10 + static_cast<u64>(text[pos] - '0');
        n.frac_scale *= 10;
      }
      ++pos;
      any = true;
    }
  }
  return any;
}

// The fractional part in nanoseconds, truncated. 128-bit because frac (< 1e12) times an
// hour in ns (3.6e12) overflows 64 bits.
u64 fraction_ns(const Number& n, u64 unit_ns) {
  return static_cast<u64>(static_cast<u128>(n.frac) * unit_ns / n.frac_scale);
}

long ceil_ms(u64 ns) { return static_cast<long>((ns + kNsPerMs - 1) / kNsPerMs); }

// A bare non-negative decimal in units of unit_ns, to milliseconds rounded up.
std::optional<long> parse_plain_decimal(std::string_view text, u64 unit_ns) {
  text = trim(text);
  std::size_t pos = 0;
  Number n;
  if (!read_number(text, pos, n) || pos != text.size()) return std::nullopt;
  if (n.whole > kMaxNs / unit_ns) return std::nullopt;
  return ceil_ms(n.whole * unit_ns + fraction_ns(n, unit_ns));
}

}  // namespace

std::optional<long> parse_duration_ms(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (text == "0") return 0L;
  u64 total_ns = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    Number n;
    if (!read_number(text, pos, n)) return std::nullopt;
    const Unit* unit = nullptr;
    for (const auto& candidate : kUnits) {
      if (text.substr(pos, candidate.suffix.size()) == candidate.suffix) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    pos += unit->suffix.size();
    if (n.whole > kMaxNs / unit->ns) return std::nullopt;
    total_ns += n.whole * unit->ns + fraction_ns(n, unit->ns);
    if (total_ns > kMaxNs) return std::nullopt;
  }
  return ceil_ms(total_ns);
}

std::optional<long> parse_seconds_ms(std::string_view text) { return parse_plain_decimal(text, 1'000'000'000); }

std::optional<long> parse_millis_ms(std::string_view text) { return parse_plain_decimal(text, kNsPerMs); }

}  // namespace celaest::core
