// MurmurHash3 x86_32 against the published test vectors (SMHasher's reference results as
// collected for implementers; cross-checked when written against the murmurhash3js-revisited
// npm package), and the Unleash bucket built on it.
#include "core/murmur3.hpp"

#include <gtest/gtest.h>

#include <string>

using celaest::core::murmur3_x86_32;
using celaest::core::unleash_bucket;

namespace {
std::string bytes(std::initializer_list<unsigned char> list) { return std::string(list.begin(), list.end()); }
}  // namespace

TEST(Murmur3, EmptyInputDependsOnlyOnTheSeed) {
  EXPECT_EQ(murmur3_x86_32("", 0), 0u);
  EXPECT_EQ(murmur3_x86_32("", 1), 0x514E28B7u);
  EXPECT_EQ(murmur3_x86_32("", 0xffffffffu), 0x81F16F39u);
}

TEST(Murmur3, EveryTailLength) {
  EXPECT_EQ(murmur3_x86_32(bytes({0x00, 0x00, 0x00, 0x00}), 0), 0x2362F9DEu);
  EXPECT_EQ(murmur3_x86_32(bytes({0x00, 0x00, 0x00}), 0), 0x85F0B427u);
  EXPECT_EQ(murmur3_x86_32(bytes({0x00, 0x00}), 0), 0x30F4C306u);
  EXPECT_EQ(murmur3_x86_32(bytes({0x00}), 0), 0x514E28B7u);
  EXPECT_EQ(murmur3_x86_32(bytes({0x21, 0x43, 0x65, 0x87}), 0), 0xF55B516Bu);
  EXPECT_EQ(murmur3_x86_32(bytes({0x21, 0x43, 0x65}), 0), 0x7E4A8634u);
  EXPECT_EQ(murmur3_x86_32(bytes({0x21, 0x43}), 0), 0xA0F7B07Au);
  EXPECT_EQ(murmur3_x86_32(bytes({0x21}), 0), 0x72661CF4u);
}

TEST(Murmur3, HighBitsAndSeedsAreMixedIn) {
  EXPECT_EQ(murmur3_x86_32(bytes({0xff, 0xff, 0xff, 0xff}), 0), 0x76293B50u);
  // The seed is xor-ed into the state: this seed cancels the first block exactly.
  EXPECT_EQ(murmur3_x86_32(bytes({0x21, 0x43, 0x65, 0x87}), 0x5082EDEEu), 0x2362F9DEu);
}

TEST(Murmur3, TextVectors) {
  const std::uint32_t seed = 0x9747b28cu;
  EXPECT_EQ(murmur3_x86_32("a", seed), 0x7FA09EA6u);
  EXPECT_EQ(murmur3_x86_32("aa", seed), 0x5D211726u);
  EXPECT_EQ(murmur3_x86_32("aaa", seed), 0x283E0130u);
  EXPECT_EQ(murmur3_x86_32("aaaa", seed), 0x5A97808Au);
  EXPECT_EQ(murmur3_x86_32("ab", seed), 0x74875592u);
  EXPECT_EQ(murmur3_x86_32("abc", seed), 0xC84A62DDu);
  EXPECT_EQ(murmur3_x86_32("abcd", seed), 0xF0478627u);
  EXPECT_EQ(murmur3_x86_32("Hello, world!", seed), 0x24884CBAu);
  EXPECT_EQ(murmur3_x86_32("The quick brown fox jumps over the lazy dog", seed), 0x2FA826CDu);
  EXPECT_EQ(murmur3_x86_32(std::string(256, 'a'), seed), 0x37405BDCu);
  EXPECT_EQ(murmur3_x86_32("abc", 0), 0xB3DD93FAu);
  EXPECT_EQ(murmur3_x86_32("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0), 0xEE925B90u);
}

TEST(Murmur3, Utf8TextIsHashedAsItsBytes) {
  // "ππππππππ": eight two-byte UTF-8 sequences.
  EXPECT_EQ(murmur3_x86_32("\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80", 0x9747b28cu),
            0xD58063C1u);
}

TEST(UnleashBucket, IsTheHashOfGroupColonSubjectModHundredPlusOne) {
  const std::string key = "checkout:0f000000-0000-4000-8000-000000000001";
  EXPECT_EQ(unleash_bucket("checkout", "0f000000-0000-4000-8000-000000000001"),
            static_cast<int>(murmur3_x86_32(key, 0) % 100) + 1);
  // "abc" hashes to 0xB3DD93FA = 3017643002 with seed 0: group "a", subject "c" is not it
  // ("a:c"), which shows the colon is part of the key.
  EXPECT_NE(unleash_bucket("a", "c"), static_cast<int>(0xB3DD93FAu % 100) + 1);
}

TEST(UnleashBucket, AlwaysOneToHundred) {
  for (int i = 0; i < 10000; ++i) {
    int bucket = unleash_bucket("flag", std::to_string(i));
    ASSERT_GE(bucket, 1);
    ASSERT_LE(bucket, 100);
  }
}
