#include "core/uuid_bytes.hpp"

#include <gtest/gtest.h>

using celaest::core::parse_uuid;

TEST(UuidBytes, CanonicalForm) {
  auto bytes = parse_uuid("00112233-4455-6677-8899-aAbBcCdDeEfF");
  ASSERT_TRUE(bytes);
  EXPECT_EQ((*bytes)[0], 0x00);
  EXPECT_EQ((*bytes)[1], 0x11);
  EXPECT_EQ((*bytes)[9], 0x99);
  EXPECT_EQ((*bytes)[10], 0xaa);
  EXPECT_EQ((*bytes)[15], 0xff);
}

TEST(UuidBytes, BareHexDigits) {
  EXPECT_EQ(parse_uuid("00112233445566778899aabbccddeeff"), parse_uuid("00112233-4455-6677-8899-aabbccddeeff"));
}

TEST(UuidBytes, RejectsAnythingElse) {
  EXPECT_FALSE(parse_uuid(""));
  EXPECT_FALSE(parse_uuid("00112233-4455-6677-8899-aabbccddeef"));    // short
  EXPECT_FALSE(parse_uuid("00112233-4455-6677-8899-aabbccddeeff0"));  // long
  EXPECT_FALSE(parse_uuid("0011223344-55-6677-8899-aabbccddeeff"));   // dash misplaced
  EXPECT_FALSE(parse_uuid("00112233-4455-6677-8899-aabbccddeefg"));   // not hex
}
