#include "http/headers.hpp"

#include "core/headers.hpp"

#include <gtest/gtest.h>

namespace celaest::http {
namespace {

using core::find_header;

std::vector<Header> feed(std::initializer_list<const char*> lines) {
  std::vector<Header> headers;
  for (const char* line : lines) add_header_line(headers, line);
  return headers;
}

TEST(Headers, ParsesNameAndTrimmedValuePreservingNameCase) {
  auto headers = feed({"HTTP/1.1 200 OK\r\n", "Content-Type:  application/json \r\n", "X-Request-Id:req_1\r\n", "\r\n"});
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[0].name, "Content-Type");
  EXPECT_EQ(headers[0].value, "application/json");
  EXPECT_EQ(headers[1].name, "X-Request-Id");
  EXPECT_EQ(headers[1].value, "req_1");
}

TEST(Headers, FindIsCaseInsensitiveAndLastWins) {
  std::vector<Header> headers = {{"Retry-After", "1"}, {"x-request-id", "a"}, {"RETRY-AFTER", "2"}};
  EXPECT_EQ(find_header(headers, "retry-after").value(), "2");
  EXPECT_EQ(find_header(headers, "X-Request-ID").value(), "a");
  EXPECT_FALSE(find_header(headers, "retry-after-ms").has_value());
  EXPECT_FALSE(find_header({}, "x").has_value());
}

TEST(Headers, KeepsOnlyTheFinalResponsesHeaders) {
  auto headers = feed({"HTTP/1.1 100 Continue\r\n", "X-Interim: yes\r\n", "\r\n", "HTTP/1.1 200 OK\r\n",
                       "X-Final: yes\r\n", "\r\n"});
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].name, "X-Final");
  EXPECT_FALSE(find_header(headers, "x-interim"));
}

TEST(Headers, Http2StatusLineAlsoStartsAResponse) {
  auto headers = feed({"HTTP/1.1 200 Connection established\r\n", "Proxy-Agent: p\r\n", "\r\n", "HTTP/2 429 \r\n",
                       "retry-after: 3\r\n"});
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(find_header(headers, "Retry-After").value(), "3");
}

TEST(Headers, FoldedLinesJoinThePreviousValue) {
  auto headers = feed({"HTTP/1.1 200 OK\r\n", "X-Long: part one\r\n", "\t part two\r\n"});
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].value, "part one part two");
}

TEST(Headers, IgnoresLinesWithoutAName) {
  auto headers = feed({"HTTP/1.1 200 OK\r\n", "garbage\r\n", ": no name\r\n", "Empty:\r\n"});
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].name, "Empty");
  EXPECT_EQ(headers[0].value, "");
}

}  // namespace
}  // namespace celaest::http
