#include "core/outbound_guard.hpp"

#include <gtest/gtest.h>

using celaest::core::AddressClass;
using celaest::core::classify_address;
using celaest::core::matching_prefix;
using celaest::core::parse_url_target;
using celaest::core::private_address_allowed;
using celaest::core::split_allowlist;

TEST(ClassifyAddress, Ipv4Ranges) {
  EXPECT_EQ(classify_address("127.0.0.1"), AddressClass::Loopback);
  EXPECT_EQ(classify_address("127.255.255.254"), AddressClass::Loopback);
  EXPECT_EQ(classify_address("169.254.169.254"), AddressClass::LinkLocal);
  EXPECT_EQ(classify_address("10.1.2.3"), AddressClass::Private);
  EXPECT_EQ(classify_address("172.16.0.1"), AddressClass::Private);
  EXPECT_EQ(classify_address("172.31.255.255"), AddressClass::Private);
  EXPECT_EQ(classify_address("172.32.0.1"), AddressClass::Public);
  EXPECT_EQ(classify_address("192.168.1.1"), AddressClass::Private);
  EXPECT_EQ(classify_address("100.64.0.1"), AddressClass::Private);
  EXPECT_EQ(classify_address("0.0.0.0"), AddressClass::Unspecified);
  EXPECT_EQ(classify_address("224.0.0.1"), AddressClass::Reserved);
  EXPECT_EQ(classify_address("255.255.255.255"), AddressClass::Reserved);
  EXPECT_EQ(classify_address("8.8.8.8"), AddressClass::Public);
  EXPECT_EQ(classify_address("104.18.6.192"), AddressClass::Public);
}

TEST(ClassifyAddress, Ipv6Ranges) {
  EXPECT_EQ(classify_address("::1"), AddressClass::Loopback);
  EXPECT_EQ(classify_address("::"), AddressClass::Unspecified);
  EXPECT_EQ(classify_address("fe80::1"), AddressClass::LinkLocal);
  EXPECT_EQ(classify_address("fc00::1"), AddressClass::Private);
  EXPECT_EQ(classify_address("fd12:3456::1"), AddressClass::Private);
  EXPECT_EQ(classify_address("ff02::1"), AddressClass::Reserved);
  EXPECT_EQ(classify_address("2606:4700::6810:6c0"), AddressClass::Public);
}

TEST(ClassifyAddress, MappedIpv4DecidesByItsIpv4Address) {
  EXPECT_EQ(classify_address("::ffff:127.0.0.1"), AddressClass::Loopback);
  EXPECT_EQ(classify_address("::ffff:169.254.169.254"), AddressClass::LinkLocal);
  EXPECT_EQ(classify_address("::ffff:8.8.8.8"), AddressClass::Public);
  EXPECT_EQ(classify_address("64:ff9b::a9fe:a9fe"), AddressClass::LinkLocal);
}

TEST(ClassifyAddress, NotALiteral) {
  EXPECT_EQ(classify_address("localhost"), AddressClass::Invalid);
  EXPECT_EQ(classify_address("2130706433"), AddressClass::Invalid);  // inet_pton is strict
  EXPECT_EQ(classify_address("0x7f.0.0.1"), AddressClass::Invalid);
  EXPECT_EQ(classify_address(""), AddressClass::Invalid);
}

TEST(ParseUrlTarget, HostPortScheme) {
  auto t = parse_url_target("HTTPS://API.OpenAI.com/v1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->scheme, "https");
  EXPECT_EQ(t->host, "api.openai.com");
  EXPECT_EQ(t->port, 443);
  EXPECT_FALSE(t->host_is_literal);
  t = parse_url_target("http://[::1]:8080/x");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 8080);
  EXPECT_TRUE(t->host_is_literal);
  EXPECT_FALSE(parse_url_target("ftp://x/"));
  EXPECT_FALSE(parse_url_target("http://user@evil/"));
  EXPECT_FALSE(parse_url_target("http://:80/"));
  EXPECT_FALSE(parse_url_target("http://host:99999/"));
}

TEST(MatchingPrefix, BoundariesAndOrigin) {
  const auto allow = split_allowlist("https://api.openai.com/v1, https://api.anthropic.com http://localhost:11434");
  ASSERT_EQ(allow.size(), 3u);
  EXPECT_TRUE(matching_prefix("https://api.openai.com/v1", allow));
  EXPECT_TRUE(matching_prefix("https://api.openai.com/v1/chat", allow));
  EXPECT_TRUE(matching_prefix("https://API.OPENAI.COM:443/v1", allow));
  EXPECT_FALSE(matching_prefix("https://api.openai.com/v10", allow));
  EXPECT_FALSE(matching_prefix("https://api.openai.com.evil.test/v1", allow));
  EXPECT_FALSE(matching_prefix("http://api.openai.com/v1", allow));
  EXPECT_FALSE(matching_prefix("https://api.openai.com:8443/v1", allow));
  EXPECT_TRUE(matching_prefix("https://api.anthropic.com/anything", allow));
  EXPECT_TRUE(matching_prefix("http://localhost:11434", allow));
  EXPECT_FALSE(matching_prefix("http://localhost:11435", allow));
  EXPECT_FALSE(matching_prefix("http://user@api.anthropic.com/", allow));
}

TEST(PrivateAddressAllowed, OnlyWhenTheAddressItselfIsAllowlisted) {
  EXPECT_TRUE(private_address_allowed("http://127.0.0.1:8080", "127.0.0.1", AddressClass::Loopback));
  EXPECT_FALSE(private_address_allowed("http://127.0.0.1:8080", "127.0.0.2", AddressClass::Loopback));
  EXPECT_TRUE(private_address_allowed("http://localhost:11434", "::1", AddressClass::Loopback));
  EXPECT_FALSE(private_address_allowed("http://localhost:11434", "10.0.0.1", AddressClass::Private));
  // A name that resolves to an internal address is not an allowance for it.
  EXPECT_FALSE(private_address_allowed("https://api.openai.com/v1", "169.254.169.254", AddressClass::LinkLocal));
  EXPECT_TRUE(private_address_allowed("https://api.openai.com/v1", "104.18.6.192", AddressClass::Public));
  EXPECT_TRUE(private_address_allowed("http://[::1]:9", "::1", AddressClass::Loopback));
}
