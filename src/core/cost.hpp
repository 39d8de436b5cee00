// Cost of a call in micro-dollars with exact integer arithmetic: prices are DECIMAL(10,6)
// dollars per 1000 tokens, and a float would drift over millions of recorded tasks.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace celaest::core {

// round((tok_in * price_in + tok_out * price_out) / 1000, 6) dollars, as an integer number
// of micro-dollars, rounded half away from zero. Prices are decimal strings as PostgreSQL
// prints numerics ("0.002500", "1", ".5", "-0.1"); empty (or all blanks) means 0 (no price).
// Throws std::invalid_argument for a price that is not a plain decimal.
long long cost_micro_usd(long long tok_in, long long tok_out, std::string_view price_in_per_1k,
                         std::string_view price_out_per_1k);

// The same cost before the rounding, in nano-dollars (1/1000 of a micro-dollar), saturated:
// a call's attempts are summed exactly, each at its own model's prices, then rounded once
// (micro_usd_from_nano), so a call priced from its total tokens costs what the formula says.
long long cost_nano_usd(long long tok_in, long long tok_out, std::string_view price_in_per_1k,
                        std::string_view price_out_per_1k);
// Nano-dollars to micro-dollars, rounded half away from zero.
long long micro_usd_from_nano(long long nano);

// A decimal price in millionths ("0.0025" → 2500); digits past the sixth decimal are
// rounded half away from zero. nullopt if not a plain decimal or too large.
std::optional<long long> parse_price_micro(std::string_view price);

// Micro-dollars as a decimal string with six places ("1234" → "0.001234"), ready to cast
// to numeric without going through a float.
std::string format_micro_usd(long long micro);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
