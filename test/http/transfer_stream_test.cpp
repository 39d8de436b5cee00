// TransferStream: the batch runner's multi handle, refilled one transfer at a time.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "http/transfer_stream.hpp"
#include "test_util.hpp"

namespace celaest::http::test {
namespace {

// Drives until `count` transfers have ended (or 20 s pass), returning them by tag.
std::map<TransferStream::Tag, Response> drive_until(TransferStream& stream, size_t count) {
  std::map<TransferStream::Tag, Response> ended;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<TransferStream::Ended> batch;
  while (ended.size() < count && std::chrono::steady_clock::now() < deadline) {
    batch.clear();
    stream.drive(20, batch);
    for (auto& one : batch) ended.emplace(one.tag, std::move(one.response));
  }
  return ended;
}

// The eight of a /gate group are answered only when all eight are in flight together: a
// stream started one transfer at a time still runs them side by side.
TEST(TransferStream, TransfersStartedOneByOneRunTogether) {
  TransferStream stream(kNeverAbort);
  const std::string group = "stream-together";
  for (TransferStream::Tag tag = 0; tag < 8; ++tag)
    stream.start(tag, make_request("/gate?group=" + group + "&n=8&id=" + std::to_string(tag)));
  EXPECT_EQ(stream.in_flight(), 8u);
  auto ended = drive_until(stream, 8);
  ASSERT_EQ(ended.size(), 8u);
  for (auto& [tag, response] : ended) {
    EXPECT_EQ(response.error, TransportError::None) << response.error_text;
    EXPECT_EQ(response.body, std::to_string(tag));
  }
  EXPECT_EQ(stream.in_flight(), 0u);
}

// A slot freed by a quick transfer is refilled while a slow one is still on the wire.
TEST(TransferStream, AQuickTransferEndsWhileASlowOneRuns) {
  TransferStream stream(kNeverAbort);
  stream.start(1, make_request("/slow?ms=1500&id=slow"));
  stream.start(2, make_request("/slow?ms=10&id=quick"));
  auto first = drive_until(stream, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first.begin()->first, 2u);
  stream.start(3, make_request("/slow?ms=10&id=refill"));
  auto rest = drive_until(stream, 2);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest.begin()->first, 1u);
  EXPECT_EQ(rest.rbegin()->first, 3u);
}

// cancel() stops one transfer; it is never reported and the others go on.
TEST(TransferStream, ACancelledTransferIsNeverReported) {
  TransferStream stream(kNeverAbort);
  stream.start(1, make_request("/slow?ms=3000&id=cancelled"));
  stream.start(2, make_request("/slow?ms=50&id=kept"));
  EXPECT_TRUE(stream.cancel(1));
  EXPECT_FALSE(stream.cancel(1));
  auto ended = drive_until(stream, 1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended.begin()->first, 2u);
  EXPECT_EQ(stream.in_flight(), 0u);  // nothing left of the cancelled one
}

// The abort check ends every transfer in flight as Aborted.
TEST(TransferStream, TheAbortCheckEndsEveryTransfer) {
  bool abort = false;
  TransferStream stream([&abort] { return abort; });
  stream.start(1, make_request("/slow?ms=3000&id=a"));
  stream.start(2, make_request("/slow?ms=3000&id=b"));
  std::vector<TransferStream::Ended> ended;
  stream.drive(20, ended);
  EXPECT_TRUE(ended.empty());
  abort = true;
  stream.drive(20, ended);
  ASSERT_EQ(ended.size(), 2u);
  for (const auto& one : ended) EXPECT_EQ(one.response.error, TransportError::Aborted);
  EXPECT_EQ(stream.in_flight(), 0u);
}

// An invalid request ends at the next drive without reaching the wire.
TEST(TransferStream, AnInvalidRequestEndsAtTheNextDrive) {
  TransferStream stream(kNeverAbort);
  Request request = make_request("/slow?ms=10");
  request.url = "ftp://example.invalid/";
  stream.start(7, request);
  std::vector<TransferStream::Ended> ended;
  stream.drive(0, ended);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].tag, 7u);
  EXPECT_NE(ended[0].response.error, TransportError::None);
}

}  // namespace
}  // namespace celaest::http::test
