#include "core/murmur3.hpp"

#include <string>

namespace celaest::core {
namespace {

constexpr std::uint32_t kC1 = 0xcc9e2d51u;
constexpr std::uint32_t kC2 = 0x1b873593u;

constexpr std::uint32_t rotl32(std::uint32_t x, int r) noexcept { return (x << r) | (x >> (32 - r)); }

// Mixes one 4-byte block (or the zero-padded tail) before it enters the state.
constexpr std::uint32_t scramble(std::uint32_t k) noexcept { return rotl32(k * kC1, 15) * kC2; }

// The finalizer: forces every input bit to affect every output bit.
constexpr std::uint32_t fmix32(std::uint32_t h) noexcept {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace

std::uint32_t murmur3_x86_32(std::string_view bytes, std::uint32_t seed) noexcept {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t length = bytes.size();
  const std::size_t block_count = length / 4;
  std::uint32_t h = seed;

  for (std::size_t i = 0; i < block_count; ++i) {
    const unsigned char* p = data + 4 * i;
    // Little-endian whatever the host: the reference is defined on x86 reads.
    std::uint32_t k = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                      std::uint32_t(p[3]) << 24;
    h ^= scramble(k);
    h = rotl32(h, 13) * 5 + 0xe6546b64u;
  }

  const unsigned char* tail = data + 4 * block_count;
  std::uint32_t k = 0;
  switch (length & 3) {
    case 3:
      k ^= std::uint32_t(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k ^= std::uint32_t(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k ^= std::uint32_t(tail[0]);
      h ^= scramble(k);
      break;
    default:
      break;
  }

  h ^= static_cast<std::uint32_t>(length);
  return fmix32(h);
}

int unleash_bucket(std::string_view group, std::string_view subject) {
  std::string key;
  key.reserve(group.size() + 1 + subject.size());
  key.append(group).append(1, ':').append(subject);
  return static_cast<int>(murmur3_x86_32(key, 0) % 100u) + 1;
}

}  // namespace celaest::core
