// perform(): one request at a time against test_server.py.
#include "http/client.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace celaest::http::test {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Client, PostSendsBodyHeadersAndUserAgent) {
  Client client;
  Request request = make_request("/echo", "POST");
  request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer sk-test"}};
  request.body = R"({"model":"m"})";
  const Response response = client.perform(request, kNeverAbort);
  ASSERT_EQ(response.error, TransportError::None) << response.error_text;
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(contains(response.body, "method=POST")) << response.body;
  EXPECT_TRUE(contains(response.body, "body={\"model\":\"m\"}")) << response.body;
  EXPECT_TRUE(contains(response.body, "header:Content-Type=application/json")) << response.body;
  EXPECT_TRUE(contains(response.body, "header:Authorization=Bearer sk-test")) << response.body;
  EXPECT_TRUE(contains(response.body, "header:User-Agent=celaest/0.1")) << response.body;
  EXPECT_TRUE(contains(response.body, "header:Accept-Encoding=")) << response.body;
  EXPECT_FALSE(contains(response.body, "header:Expect")) << response.body;
  EXPECT_EQ(find_header(response.headers, "content-type").value(), "text/plain");
  EXPECT_EQ(response.error_text, "");
}

TEST(Client, GetAndCustomMethods) {
  Client client;
  Response got = client.perform(make_request("/echo", "GET"), kNeverAbort);
  EXPECT_TRUE(contains(got.body, "method=GET\n")) << got.body;
  Request put = make_request("/echo", "PUT");
  put.body = "payload";
  Response put_response = client.perform(put, kNeverAbort);
  EXPECT_TRUE(contains(put_response.body, "method=PUT\n")) << put_response.body;
  EXPECT_TRUE(contains(put_response.body, "body=payload")) << put_response.body;
  Response deleted = client.perform(make_request("/echo", "DELETE"), kNeverAbort);
  EXPECT_TRUE(contains(deleted.body, "method=DELETE\n")) << deleted.body;
  Response head = client.perform(make_request("/ok", "HEAD"), kNeverAbort);
  EXPECT_EQ(head.error, TransportError::None) << head.error_text;
  EXPECT_EQ(head.body, "");
}

TEST(Client, KeepAliveReusesOneConnectionForSequentialRequests) {
  Client client;
  std::string first_connection;
  for (int i = 0; i < 3; ++i) {
    const Response response = client.perform(make_request("/ok"), kNeverAbort);
    ASSERT_EQ(response.error, TransportError::None) << response.error_text;
    EXPECT_EQ(response.body, "hello");
    const std::string connection(find_header(response.headers, "x-conn-id").value());
    if (i == 0) {
      first_connection = connection;
      EXPECT_EQ(response.new_connections, 1);
    } else {
      EXPECT_EQ(connection, first_connection) << "request " << i << " opened a new connection";
      EXPECT_EQ(response.new_connections, 0);
    }
  }
}

TEST(Client, ResponseHeadersAreCaseInsensitiveLastWins) {
  Client client;
  const Response response = client.perform(make_request("/headers"), kNeverAbort);
  ASSERT_EQ(response.error, TransportError::None) << response.error_text;
  EXPECT_EQ(find_header(response.headers, "X-MIXED-CASE").value(), "second");
  EXPECT_EQ(find_header(response.headers, "retry-after").value(), "7");
  EXPECT_FALSE(find_header(response.headers, "x-absent").has_value());
  bool name_preserved = false;
  for (const Header& header : response.headers) name_preserved = name_preserved || header.name == "X-Mixed-Case";
  EXPECT_TRUE(name_preserved);
}

TEST(Client, InterimResponseHeadersAreDropped) {
  Client client;
  const Response response = client.perform(make_request("/interim"), kNeverAbort);
  ASSERT_EQ(response.error, TransportError::None) << response.error_text;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "final");
  EXPECT_TRUE(find_header(response.headers, "x-final").has_value());
  EXPECT_FALSE(find_header(response.headers, "x-interim").has_value());
}

TEST(Client, HttpErrorStatusIsAResponseNotATransportError) {
  Client client;
  const Response response = client.perform(make_request("/status?code=429&retry=3"), kNeverAbort);
  EXPECT_EQ(response.error, TransportError::None);
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.body, R"({"error":"x"})");
  EXPECT_EQ(find_header(response.headers, "retry-after").value(), "3");  // parsed by core/retry_hint
}

TEST(Client, GzipBodyIsDecoded) {
  Client client;
  const Response response = client.perform(make_request("/gzip?n=100000"), kNeverAbort);
  ASSERT_EQ(response.error, TransportError::None) << response.error_text;
  EXPECT_EQ(response.body, std::string(100000, 'a'));
}

TEST(Client, TotalTimeout) {
  Client client;
  Request request = make_request("/hang");
  request.limits.timeout_ms = 300;
  const auto start = std::chrono::steady_clock::now();
  const Response response = client.perform(request, kNeverAbort);
  const long took = ms_since(start);
  EXPECT_EQ(response.error, TransportError::Timeout) << response.error_text;
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 2000);
  EXPECT_GE(response.elapsed_ms, 290);
  // The client is still usable afterwards.
  EXPECT_EQ(client.perform(make_request("/ok"), kNeverAbort).body, "hello");
}

TEST(Client, ConnectionRefusedKeepsSecretsOutOfErrorText) {
  Client client;
  Request request;
  request.url = "http://127.0.0.1:" + std::to_string(refused_port()) + "/v1/chat/completions";
  request.headers = {{"Authorization", "Bearer sk-very-secret-key"}};
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::Connect) << response.error_text;
  EXPECT_EQ(response.status, 0);
  EXPECT_FALSE(response.error_text.empty());
  EXPECT_FALSE(contains(response.error_text, "sk-very-secret-key")) << response.error_text;
}

TEST(Client, BodyOverTheCapIsTooLarge) {
  Client client;
  Request request = make_request("/big?n=100000");
  request.limits.max_response_bytes = 1000;
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::TooLarge) << response.error_text;
  EXPECT_LE(response.body.size(), 1000u);
  EXPECT_EQ(response.error_text, "response exceeds max_response_bytes (1000)");
}

TEST(Client, BodyExactlyAtTheCapIsFine) {
  Client client;
  Request request = make_request("/big?n=50");
  request.limits.max_response_bytes = 50;  // smaller than the headers: they do not count
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::None) << response.error_text;
  EXPECT_EQ(response.body.size(), 50u);
}

TEST(Client, EndlessHeadersAreTooLarge) {
  Client client;
  const Response response = client.perform(make_request("/header-flood?n=5000"), kNeverAbort);  // ~350 kB
  EXPECT_EQ(response.error, TransportError::TooLarge) << response.error_text;
  EXPECT_EQ(response.error_text, "response headers exceed 262144 bytes");
}

TEST(Client, CapAppliesToTheDecodedBody) {
  Client client;
  Request request = make_request("/gzip?n=1000000");  // ~1 kB on the wire, 1 MB decoded
  request.limits.max_response_bytes = 100000;
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::TooLarge) << response.error_text;
  EXPECT_LE(response.body.size(), 100000u);
}

TEST(Client, TruncatedBodyIsOther) {
  Client client;
  const Response response = client.perform(make_request("/truncated"), kNeverAbort);
  EXPECT_EQ(response.error, TransportError::Other);
  EXPECT_EQ(response.error_text.rfind("truncated response", 0), 0u) << response.error_text;
}

TEST(Client, HeaderInjectionIsRefusedBeforeSending) {
  Client client;
  Request request = make_request("/echo", "POST");
  request.headers = {{"Authorization", "Bearer sk-secret\r\nX-Injected: 1"}};
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::Other);
  EXPECT_EQ(response.error_text, "invalid request: request header #1 is malformed");
  EXPECT_EQ(response.status, 0);
}

TEST(Client, OnlyHttpAndHttpsUrls) {
  Client client;
  Request request;
  request.url = "file:///etc/hostname";
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::Other);
  EXPECT_EQ(response.body, "");
}

TEST(Client, TlsCertificatesAreVerified) {
  LocalServer tls_server(/*tls=*/true);
  if (!tls_server.running()) GTEST_SKIP() << "no openssl CLI to make a certificate";
  Client client;
  Request request;
  request.url = tls_server.url("/ok");
  const Response response = client.perform(request, kNeverAbort);
  EXPECT_EQ(response.error, TransportError::Other) << response.error_text;
  EXPECT_EQ(response.status, 0);
  EXPECT_TRUE(contains(response.error_text, "certificate")) << response.error_text;
}

}  // namespace
}  // namespace celaest::http::test

namespace celaest::http::test {
namespace {

// The outbound guard pins a transfer to the address it checked: the URL's name connects there
// and nowhere else, whatever DNS would answer (here: the name does not resolve at all).
TEST(Client, PinnedAddressIsTheOnlyOneConnected) {
  Client client;
  Request request = make_request("/ok");
  const std::string url = request.url;  // http://127.0.0.1:<port>/ok
  const std::string port = url.substr(url.rfind(':') + 1, url.find('/', 7) - url.rfind(':') - 1);
  request.url = "http://pinned.celaest.invalid:" + port + "/ok";
  request.pinned_address = "+pinned.celaest.invalid:" + port + ":127.0.0.1";
  const Response pinned = client.perform(request, kNeverAbort);
  ASSERT_EQ(pinned.error, TransportError::None) << pinned.error_text;
  EXPECT_EQ(pinned.body, "hello");
  request.pinned_address.clear();
  Client fresh;  // its own DNS cache: the pin above is not in it
  const Response unpinned = fresh.perform(request, kNeverAbort);
  EXPECT_NE(unpinned.error, TransportError::None);  // .invalid never resolves
}

}  // namespace
}  // namespace celaest::http::test
