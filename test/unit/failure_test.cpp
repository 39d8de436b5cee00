#include "core/failure.hpp"

#include <gtest/gtest.h>

#include "core/codec.hpp"

namespace celaest::core {
namespace {

struct StatusCase {
  long status;
  FailureKind kind;
  const char* code;
  bool retryable, key_unhealthy, try_next_model;
};

TEST(FailureForStatus, RetryRuleOfProvidersSection4) {
  const StatusCase cases[] = {
      {400, FailureKind::BadRequest, "bad_request", false, false, false},
      {401, FailureKind::Auth, "auth_failed", false, true, false},
      {402, FailureKind::Billing, "billing", false, true, false},
      {403, FailureKind::Forbidden, "forbidden", false, true, false},
      {404, FailureKind::NotFound, "model_not_found", false, false, true},
      {408, FailureKind::Timeout, "timeout", true, false, false},
      {409, FailureKind::ServerError, "conflict", true, false, false},
      {413, FailureKind::TooLarge, "request_too_large", false, false, false},
      {422, FailureKind::Unprocessable, "unprocessable", false, false, false},
      {424, FailureKind::BadRequest, "bad_request", false, false, false},
      {429, FailureKind::RateLimited, "rate_limited", true, false, false},
      {498, FailureKind::Overloaded, "overloaded", true, false, false},
      {499, FailureKind::BadRequest, "bad_request", false, false, false},
      {500, FailureKind::ServerError, "server_error", true, false, false},
      {501, FailureKind::ServerError, "server_error", true, false, false},
      {502, FailureKind::Overloaded, "overloaded", true, false, false},
      {503, FailureKind::Overloaded, "overloaded", true, false, false},
      {504, FailureKind::Timeout, "timeout", true, false, false},
      {529, FailureKind::Overloaded, "overloaded", true, false, false},
      {302, FailureKind::MalformedResponse, "unexpected_status", false, false, false},
  };
  for (const auto& c : cases) {
    ChatResult r = failure_for_status(c.status, "msg");
    SCOPED_TRACE(c.status);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.http_status, c.status);
    EXPECT_EQ(r.failure, c.kind);
    EXPECT_EQ(r.error_code, c.code);
    EXPECT_EQ(r.retryable, c.retryable);
    EXPECT_EQ(r.key_unhealthy, c.key_unhealthy);
    EXPECT_EQ(r.try_next_model, c.try_next_model);
    EXPECT_EQ(r.error_message, "msg");
  }
}

TEST(TransportFailure, TimeoutsAndConnectionFailuresAreRetryable) {
  ChatResult t = transport_failure(true, "operation timed out after 30000 ms");
  EXPECT_EQ(t.failure, FailureKind::Timeout);
  EXPECT_EQ(t.error_code, "timeout");
  EXPECT_TRUE(t.retryable);
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.http_status, 0);
  EXPECT_EQ(t.error_message, "operation timed out after 30000 ms");

  ChatResult c = transport_failure(false, "connection refused");
  EXPECT_EQ(c.failure, FailureKind::Transport);
  EXPECT_EQ(c.error_code, "connection_failed");
  EXPECT_TRUE(c.retryable);
  EXPECT_FALSE(c.key_unhealthy);
}

TEST(BodyExcerpt, FlattensAndBounds) {
  EXPECT_EQ(body_excerpt("<html>\n  <body>Bad   gateway</body>\n</html>\n"),
            "<html> <body>Bad gateway</body> </html>");
  const std::string big(10000, 'x');
  EXPECT_EQ(body_excerpt(big), std::string(200, 'x') + "...");
}

TEST(SetFailure, CodeOverrideKeepsKindConsequences) {
  ChatResult r;
  r.text = "kept";
  set_failure(r, FailureKind::RateLimited, error_code::kDailyQuota);
  EXPECT_EQ(r.error_code, "daily_quota_exhausted");
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.text, "kept");
}

}  // namespace
}  // namespace celaest::core
