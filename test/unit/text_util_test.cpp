#include <gtest/gtest.h>

#include "core/headers.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace celaest::core {
namespace {

TEST(JoinUrl, ExactlyOneSlashWhateverTheBase) {
  EXPECT_EQ(join_url("https://api.openai.com/v1", "chat/completions"), "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(join_url("https://api.openai.com/v1/", "chat/completions"), "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(join_url("https://api.openai.com/v1//", "/chat/completions"),
            "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(join_url("http://127.0.0.1:8080/openai", "models"), "http://127.0.0.1:8080/openai/models");
}

TEST(EncodePathSegment, KeepsUnreservedEscapesTheRest) {
  EXPECT_EQ(encode_path_segment("gemini-2.0-flash_001~x"), "gemini-2.0-flash_001~x");
  EXPECT_EQ(encode_path_segment("a/b:c d?"), "a%2Fb%3Ac%20d%3F");
  EXPECT_EQ(encode_path_segment("\xC3\xA9"), "%C3%A9");
}

TEST(FindHeader, CaseInsensitiveLastMatchTrimmed) {
  // A repeated single-valued header: the later one overrides the earlier (RFC 9110 §5.3).
  std::vector<Header> h = {{"Retry-After", "99"}, {"retry-after", " 30 "}, {"X-Request-Id", "req_1"}};
  EXPECT_EQ(find_header(h, "retry-after"), "30");
  EXPECT_EQ(find_header(h, "x-request-id"), "req_1");
  EXPECT_FALSE(find_header(h, "request-id").has_value());
}

TEST(Text, TruncateUtf8NeverSplitsACharacter) {
  const std::string s = "ab\xC3\xA9\xC3\xA9";  // a b é é  (6 bytes)
  EXPECT_EQ(truncate_utf8(s, 6), s);
  EXPECT_EQ(truncate_utf8(s, 3), "ab...");  // byte 3 is inside the first é
  EXPECT_EQ(truncate_utf8(s, 4), "ab\xC3\xA9...");
}

TEST(Text, RedactReplacesEverySecretOccurrence) {
  EXPECT_EQ(redact("key sk-123 and sk-123!", "sk-123"), "key *** and ***!");
  EXPECT_EQ(redact("nothing", ""), "nothing");
}

TEST(Text, CaseInsensitiveContains) {
  EXPECT_TRUE(icontains("Reply in JSON please", "json"));
  EXPECT_FALSE(icontains("jso n", "json"));
  EXPECT_TRUE(icontains("x", ""));
}

}  // namespace
}  // namespace celaest::core
