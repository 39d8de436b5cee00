// What an answer says about the key that carried it (core/call_keys.hpp): the one rule that AI
// calls and health checks share, so that a rate-limited key stays in routing either way.
#include <gtest/gtest.h>

#include "core/call_keys.hpp"
#include "core/codec.hpp"
#include "core/failure.hpp"

namespace celaest::core {
namespace {

using Health = KeyOutcome::Health;

ChatResult failed(long status) { return failure_for_status(status, "x"); }

TEST(KeyHealthRule, CallPath) {
  ChatResult ok;
  ok.ok = true;
  EXPECT_EQ(key_health_after(ok), Health::Worked);
  EXPECT_EQ(key_health_after(failed(400)), Health::Worked) << "the request was wrong, the key worked";
  EXPECT_EQ(key_health_after(failed(401)), Health::FailedDefinitively);
  EXPECT_EQ(key_health_after(failed(403)), Health::FailedDefinitively);
  EXPECT_EQ(key_health_after(failed(429)), Health::Unchanged);
  EXPECT_EQ(key_health_after(failed(404)), Health::Unchanged);
  EXPECT_EQ(key_health_after(failed(500)), Health::Failed);
  EXPECT_EQ(key_health_after(failed(503)), Health::Failed);
  EXPECT_EQ(key_health_after(transport_failure(true, "timed out")), Health::Failed);
  EXPECT_EQ(key_health_after(transport_failure(false, "refused")), Health::Failed);
  ChatResult daily = failed(429);
  set_failure(daily, FailureKind::RateLimited, error_code::kDailyQuota);
  daily.retryable = false;
  daily.key_quota_spent = true;
  EXPECT_EQ(key_health_after(daily), Health::Unchanged) << "a spent quota is not a bad key";
}

TEST(KeyHealthRule, HealthCheckCountsWhatACallWouldButNotA429) {
  EXPECT_EQ(health_check_failure(failed(429)), Health::Unchanged);
  EXPECT_EQ(health_check_failure(failed(401)), Health::FailedDefinitively);
  EXPECT_EQ(health_check_failure(failed(402)), Health::FailedDefinitively);
  EXPECT_EQ(health_check_failure(failed(500)), Health::Failed);
  EXPECT_EQ(health_check_failure(failed(503)), Health::Failed);
  EXPECT_EQ(health_check_failure(transport_failure(false, "refused")), Health::Failed);
  EXPECT_EQ(health_check_failure(transport_failure(true, "timed out")), Health::Failed);
  // A fixed, valid check request answered 400/404: the key or its endpoint cannot serve.
  EXPECT_EQ(health_check_failure(failed(404)), Health::Failed);
  EXPECT_EQ(health_check_failure(failed(400)), Health::Failed);
}

}  // namespace
}  // namespace celaest::core
