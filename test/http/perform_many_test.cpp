// perform_many(): parallel transfers on the shared multi handle.
#include <gtest/gtest.h>

#include <set>
#include <string>

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

// `count` requests to the test server's /gate, each answered only when `together` of its
// group are in flight at once (else "alone" after 5 s). A fresh group name per call.
std::vector<Request> gated_requests(size_t count, int together, std::string& group) {
  static int groups = 0;
  group = ::testing::UnitTest::GetInstance()->current_test_info()->name() + std::to_string(++groups);
  std::vector<Request> requests;
  for (size_t i = 0; i < count; ++i) {
    requests.push_back(make_request("/gate?group=" + group + "&n=" + std::to_string(together) +
                                    "&id=" + std::to_string(i)));
  }
  return requests;
}

// The most requests of the group the server held at the same moment.
int peak_in_flight(Client& client, const std::string& group) {
  return std::stoi(client.perform(make_request("/gate-peak?group=" + group), kNeverAbort).body);
}

// Parallelism is shown by the server (all eight held at once), not by comparing wall
// times, which a loaded machine stretches.
TEST(PerformMany, EightInParallelAreInFlightTogether) {
  Client client;
  std::string group;
  const std::vector<Response> responses = client.perform_many(gated_requests(8, 8, group), 8, kNeverAbort);
  ASSERT_EQ(responses.size(), 8u);
  for (size_t i = 0; i < responses.size(); ++i) {
    EXPECT_EQ(responses[i].error, TransportError::None) << responses[i].error_text;
    EXPECT_EQ(responses[i].body, std::to_string(i));  // "alone": the eight never met
  }
  EXPECT_EQ(peak_in_flight(client, group), 8);
}

TEST(PerformMany, ResultsComeInInputOrderNotCompletionOrder) {
  Client client;
  const std::vector<Response> responses = client.perform_many(slow_requests({400, 300, 200, 100, 0}), 5, kNeverAbort);
  ASSERT_EQ(responses.size(), 5u);
  for (size_t i = 0; i < responses.size(); ++i) EXPECT_EQ(responses[i].body, std::to_string(i));
}

TEST(PerformMany, MaxParallelLimitsConcurrency) {
  Client client;
  std::string group;
  // Released two at a time: a serial client would leave each one "alone"; a client that
  // ignored the limit would have more than two at the server.
  const std::vector<Response> responses = client.perform_many(gated_requests(4, 2, group), 2, kNeverAbort);
  ASSERT_EQ(responses.size(), 4u);
  for (size_t i = 0; i < responses.size(); ++i) EXPECT_EQ(responses[i].body, std::to_string(i));
  EXPECT_EQ(peak_in_flight(client, group), 2);
  // Zero is taken as one at a time, not as "nothing".
  const std::vector<Response> serial = client.perform_many(gated_requests(2, 1, group), 0, kNeverAbort);
  EXPECT_EQ(serial[0].body, "0");
  EXPECT_EQ(serial[1].body, "1");
  EXPECT_EQ(peak_in_flight(client, group), 1);
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
