#include "core/call_keys.hpp"

namespace celaest::core {

KeyOutcome::Health key_health_after(const ChatResult& result) {
  using Health = KeyOutcome::Health;
  if (result.ok || result.failure == FailureKind::Blocked || result.failure == FailureKind::EmptyOutput ||
      result.failure == FailureKind::MalformedResponse || result.failure == FailureKind::BadRequest)
    return Health::Worked;  // the key worked; the request or the output was the problem
  if (result.key_unhealthy) return Health::FailedDefinitively;
  if (result.failure == FailureKind::RateLimited) return Health::Unchanged;
  if (result.retryable) return Health::Failed;
  return Health::Unchanged;
}

KeyOutcome::Health health_check_failure(const ChatResult& failure) {
  using Health = KeyOutcome::Health;
  if (failure.key_unhealthy) return Health::FailedDefinitively;
  if (failure.failure == FailureKind::RateLimited) return Health::Unchanged;
  return Health::Failed;
}

}  // namespace celaest::core
