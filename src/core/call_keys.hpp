// What a call needs from the key pool, as two small interfaces: pick a key for a model, and
// record what an answer said about the key that served it. The glue implements them over
// the routing catalogue, the pool's rows and shared memory; tests implement them in memory.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "core/chat.hpp"
#include "core/provider.hpp"

namespace celaest::core {

// A model to try (an ai_models row, as routing chose it).
struct ModelChoice {
  std::string id;        // ai_models.id
  std::string model_id;  // the provider's model name
  Provider provider;
  std::string price_in_per_1k, price_out_per_1k;  // decimal text, "" = no price
};

// The key that will carry one request.
struct KeyChoice {
  std::optional<std::string> id;  // nullopt: keyless (a local Ollama with no key in the pool)
  std::string secret;             // plaintext: lives only for the call, never logged
  std::string base_url;
  bool has_failures = false;  // consecutive_failures > 0: a success must reset them
  // The outbound guard (API.md), decided by the key source for a base URL that a superuser did
  // not set: the address the transfer is pinned to, or why the destination is refused.
  std::string pinned_address;
  std::string blocked_reason;  // non-empty: nothing is sent with this key (blocked_destination)
};

class KeySource {
 public:
  virtual ~KeySource() = default;
  // A usable key for the model's provider, admitted into its rate windows (so the request it
  // carries is counted), none of `excluded`; nullopt when no key can take a request now.
  virtual std::optional<KeyChoice> pick(const ModelChoice& model, const std::set<std::string>& excluded) = 0;
};

// What one answer says about the key that served it.
struct KeyOutcome {
  enum class Health {
    Worked,              // the key worked (the request or the output may still have failed)
    Failed,              // a failure that may be the key's (5xx, timeout): counts toward unhealthy
    FailedDefinitively,  // the key itself is bad (401, 403, invalid key, billing): unhealthy now
    Unchanged,           // says nothing about the key's health (a 429)
  };
  int64_t at_ms = 0;     // when the answer came (Unix ms): the rate windows count the tokens then
  long long tokens = 0;  // tokens the provider reported, billed even when the answer is refused
  Health health = Health::Unchanged;
  bool had_failures = false;  // the routing copy saw failures: a Worked key must reset them
  std::optional<int64_t> cool_down_until_ms;  // a 429 with Retry-After: no call may use it before
  bool sent = true;  // false: the request never went out; the key's usage does not count it
};

// What an answer (or a failure to get one) says about the key's health, the one rule for AI
// calls and health checks alike:
//  - the key worked: any answer the key was accepted for that failed on the request or the
//    output (blocked, empty, malformed, invalid JSON, 400);
//  - failed definitively: 401/403, an invalid key, billing (key_unhealthy);
//  - unchanged: a 429 (rate limited or a spent daily quota: the key authenticated fine; it
//    neither counts toward celaest.health_failure_threshold nor resets the count), and
//    failures that are the request's or the model's (404, 413, 422, response too large);
//  - failed: other retryable failures (5xx, 408/409, timeouts, connection failures), which
//    may be the key's endpoint: they count toward the threshold.
KeyOutcome::Health key_health_after(const ChatResult& result);

// What a health check that did not pass (a non-2xx answer, or a transport failure) says about
// the key, by the same rule for what a key can fail: a 429 leaves the health unchanged (the
// key authenticated; a per-day or per-minute cap must not take it out of routing), a bad key
// fails definitively, and the rest counts toward the threshold: 5xx, timeouts and connection
// failures as on the call path, and also the 4xx answers a call would blame on its request
// (400, 404): the check's request is fixed and valid, so they mean the key or its endpoint
// cannot serve.
KeyOutcome::Health health_check_failure(const ChatResult& failure);

class KeyLedger {
 public:
  virtual ~KeyLedger() = default;
  // Usage counters, rate-window tokens, health and cool-down of a pool key.
  virtual void record(const std::string& key_id, const KeyOutcome& outcome) = 0;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
