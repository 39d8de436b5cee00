#include "http/error_map.hpp"

#include <gtest/gtest.h>

#include "http/request_check.hpp"

namespace celaest::http {
namespace {

TEST(ErrorMap, ClassifiesCurlCodes) {
  EXPECT_EQ(classify(CURLE_OK, false), TransportError::None);
  EXPECT_EQ(classify(CURLE_OPERATION_TIMEDOUT, false), TransportError::Timeout);
  for (CURLcode code : {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
                        CURLE_GOT_NOTHING}) {
    EXPECT_EQ(classify(code, false), TransportError::Connect) << code;
  }
  EXPECT_EQ(classify(CURLE_ABORTED_BY_CALLBACK, false), TransportError::Aborted);
  EXPECT_EQ(classify(CURLE_PARTIAL_FILE, false), TransportError::Other);
  EXPECT_EQ(classify(CURLE_PEER_FAILED_VERIFICATION, false), TransportError::Other);
  EXPECT_EQ(classify(CURLE_URL_MALFORMAT, false), TransportError::Other);
}

TEST(ErrorMap, TheCapDecidesOverTheCode) {
  EXPECT_EQ(classify(CURLE_WRITE_ERROR, true), TransportError::TooLarge);
  EXPECT_EQ(classify(CURLE_ABORTED_BY_CALLBACK, true), TransportError::TooLarge);
  EXPECT_EQ(classify(CURLE_WRITE_ERROR, false), TransportError::Other);
}

TEST(ErrorMap, DescribesTruncationAndSize) {
  EXPECT_EQ(describe(CURLE_PARTIAL_FILE, TransportError::Other, "transfer closed with 90 bytes remaining to read", 0),
            "truncated response: transfer closed with 90 bytes remaining to read");
  EXPECT_EQ(describe(CURLE_WRITE_ERROR, TransportError::TooLarge, "", 1000), "response exceeds max_response_bytes (1000)");
  EXPECT_EQ(describe(CURLE_COULDNT_CONNECT, TransportError::Connect, "", 0), curl_easy_strerror(CURLE_COULDNT_CONNECT));
  EXPECT_EQ(describe(CURLE_OK, TransportError::None, "ignored", 0), "");
}

TEST(ErrorMap, RedactsHeaderValuesTokensAndQueryKeys) {
  Request request;
  request.url = "https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSECRETSECRET&alt=json";
  request.headers = {{"Authorization", "Bearer sk-live-1234567890"}, {"x-api-key", "ant-KEY-abcdefgh"},
                     {"anthropic-version", "2023-06-01"}};
  const std::string text = redact(
      "saw Bearer sk-live-1234567890 then sk-live-1234567890 and ant-KEY-abcdefgh at ...?key=AIzaSECRETSECRET", request);
  EXPECT_EQ(text.find("sk-live"), std::string::npos) << text;
  EXPECT_EQ(text.find("ant-KEY"), std::string::npos) << text;
  EXPECT_EQ(text.find("AIzaSECRET"), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted]"), std::string::npos);
  EXPECT_EQ(redact("Failed to connect to 127.0.0.1 port 9", request), "Failed to connect to 127.0.0.1 port 9");
}

TEST(RequestCheck, RefusesHeaderInjectionWithoutEchoingTheValue) {
  Request request;
  request.url = "http://127.0.0.1/";
  EXPECT_FALSE(invalid_reason(request).has_value());
  request.headers = {{"Authorization", "Bearer sk-secret\r\nX-Injected: 1"}};
  const auto reason = invalid_reason(request);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(*reason, "request header #1 is malformed");
  request.headers = {{"Bad Name", "v"}};
  EXPECT_TRUE(invalid_reason(request).has_value());
  request.headers = {};
  request.method = "GET /x HTTP/1.1\r\n";
  EXPECT_TRUE(invalid_reason(request).has_value());
  request.method = "POST";
  request.url = "";
  EXPECT_EQ(invalid_reason(request).value(), "empty URL");
}

}  // namespace
}  // namespace celaest::http
