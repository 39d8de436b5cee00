// MurmurHash3 x86_32 (Austin Appleby's public-domain algorithm), written from its published
// description. Feature flags bucket with it because Unleash's gradual rollout does: the same
// subject must land in the same bucket here as there.
#pragma once

#include <cstdint>
#include <string_view>

namespace celaest::core {

// The 32-bit hash of the bytes with the given seed (little-endian block reads, as the
// reference implementation on x86).
std::uint32_t murmur3_x86_32(std::string_view bytes, std::uint32_t seed = 0) noexcept;

// Unleash's gradual-rollout bucket, 1..100: murmur3_x86_32("group:subject", 0) % 100 + 1.
// A subject is in a rollout of p percent when its bucket is <= p.
int unleash_bucket(std::string_view group, std::string_view subject);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
