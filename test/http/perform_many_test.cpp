// perform_many(): parallel transfers on the shared multi handle.
#include <gtest/gtest.h>

#include <iostream>
#include <set>

#include "http/client.hpp"
#include "test_util.hpp"

namespace celaest::http::test {
namespace {

std::vector<Request> slow_requests(const std::vector<int>& delays_ms) {
  std::vector<Request> requests;
  for (size_t i = 0; i < delays_ms.size(); ++i) {
    requests.push_back(make_request("/slow?ms=" + std::to_string(delays_ms[i]) + "&id=" + std::to_string(i)));
  }
  return requests;
}

TEST(PerformMany, EightInParallelTakeAboutOneLatency) {
  Client client;
  auto start = std::chrono::steady_clock::now();
  const Response single = client.perform(make_request("/slow?ms=300"), kNeverAbort);
  const long single_ms = ms_since(start);
  ASSERT_EQ(single.error, TransportError::None) << single.error_text;

  start = std::chrono::steady_clock::now();
  const std::vector<Response> responses = client.perform_many(slow_requests(std::vector<int>(8, 300)), 8, kNeverAbort);
  const long batch_ms = ms_since(start);
  std::cout << "[ timing   ] single " << single_ms << " ms, 8 in parallel " << batch_ms << " ms\n";
  ASSERT_EQ(responses.size(), 8u);
  for (size_t i = 0; i < responses.size(); ++i) {
    EXPECT_EQ(responses[i].error, TransportError::None) << responses[i].error_text;
    EXPECT_EQ(responses[i].body, std::to_string(i));
  }
  EXPECT_GE(batch_ms, 300);
  EXPECT_LT(batch_ms, 4 * single_ms);
}

TEST(PerformMany, ResultsComeInInputOrderNotCompletionOrder) {
  Client client;
  const std::vector<Response> responses = client.perform_many(slow_requests({400, 300, 200, 100, 0}), 5, kNeverAbort);
  ASSERT_EQ(responses.size(), 5u);
  for (size_t i = 0; i < responses.size(); ++i) EXPECT_EQ(responses[i].body, std::to_string(i));
}

TEST(PerformMany, MaxParallelLimitsConcurrency) {
  Client client;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Response> responses = client.perform_many(slow_requests({200, 200, 200, 200}), 2, kNeverAbort);
  const long took = ms_since(start);
  EXPECT_GE(took, 390);  // two waves
  EXPECT_LT(took, 790);  // not four
  for (size_t i = 0; i < responses.size(); ++i) EXPECT_EQ(responses[i].body, std::to_string(i));
  // Zero is taken as one at a time, not as "nothing".
  const std::vector<Response> serial = client.perform_many(slow_requests({0, 0}), 0, kNeverAbort);
  EXPECT_EQ(serial[0].body, "0");
  EXPECT_EQ(serial[1].body, "1");
}

TEST(PerformMany, LaterBatchesAndPerformReuseTheConnections) {
  Client client;
  std::set<std::string> opened;
  for (const Response& response : client.perform_many(slow_requests({150, 150, 150, 150}), 4, kNeverAbort)) {
    ASSERT_EQ(response.error, TransportError::None) << response.error_text;
    EXPECT_EQ(response.new_connections, 1);
    opened.insert(std::string(find_header(response.headers, "x-conn-id").value()));
  }
  EXPECT_EQ(opened.size(), 4u);
  for (const Response& response : client.perform_many(slow_requests({150, 150, 150, 150}), 4, kNeverAbort)) {
    EXPECT_EQ(response.new_connections, 0);
    EXPECT_EQ(opened.count(std::string(find_header(response.headers, "x-conn-id").value())), 1u);
  }
  const Response single = client.perform(make_request("/ok"), kNeverAbort);
  EXPECT_EQ(single.new_connections, 0);
  EXPECT_EQ(opened.count(std::string(find_header(single.headers, "x-conn-id").value())), 1u);
}

TEST(PerformMany, EachRequestGetsItsOwnOutcome) {
  Client client;
  std::vector<Request> requests;
  requests.push_back(make_request("/ok"));
  Request refused;
  refused.url = "http://127.0.0.1:" + std::to_string(refused_port()) + "/";
  requests.push_back(refused);
  Request big = make_request("/big?n=5000");
  big.limits.max_response_bytes = 100;
  requests.push_back(big);
  Request invalid = make_request("/ok");
  invalid.headers = {{"X-Key", "a\nb"}};
  requests.push_back(invalid);
  Request timeout = make_request("/hang");
  timeout.limits.timeout_ms = 200;
  requests.push_back(timeout);
  requests.push_back(make_request("/status?code=503"));

  const std::vector<Response> responses = client.perform_many(requests, 3, kNeverAbort);
  ASSERT_EQ(responses.size(), 6u);
  EXPECT_EQ(responses[0].error, TransportError::None);
  EXPECT_EQ(responses[0].body, "hello");
  EXPECT_EQ(responses[1].error, TransportError::Connect);
  EXPECT_EQ(responses[2].error, TransportError::TooLarge);
  EXPECT_EQ(responses[3].error, TransportError::Other);
  EXPECT_EQ(responses[4].error, TransportError::Timeout);
  EXPECT_EQ(responses[5].error, TransportError::None);
  EXPECT_EQ(responses[5].status, 503);
}

TEST(PerformMany, EmptyBatch) {
  Client client;
  EXPECT_TRUE(client.perform_many({}, 8, kNeverAbort).empty());
}

}  // namespace
}  // namespace celaest::http::test
