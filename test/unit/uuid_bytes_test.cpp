#include "core/uuid_bytes.hpp"

#include <gtest/gtest.h>

using celaest::core::canonical_uuid_text;
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

// The forms PostgreSQL's uuid_in accepts (its documentation's examples), canonicalised.
TEST(CanonicalUuidText, EveryFormUuidInAccepts) {
  const std::string canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
  for (const char* form : {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
                           "a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
                           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"}) {
    EXPECT_EQ(canonical_uuid_text(form), canonical) << form;
  }
}

TEST(CanonicalUuidText, RejectsWhatUuidInRejects) {
  for (const char* form : {"", "{}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
                           "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
                           "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}) {
    EXPECT_FALSE(canonical_uuid_text(form)) << form;
  }
}
