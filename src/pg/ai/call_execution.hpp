// One logical AI call as a state machine: route → encode → (transfer) → decode → decide.
// The transfer is not done here, so the same execution runs alone (run_prompt, ai_chat:
// one libcurl transfer at a time) or side by side with others (the batch runner: many
// transfers at once through libcurl multi). One implementation of routing, retries,
// fallback and key health for both.
#pragma once

#include "core/call_options.hpp"
#include "core/chat.hpp"
#include "http/http_types.hpp"

#include "pg/ai/key_health.hpp"
#include "pg/ai/routing.hpp"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace celaest::pg {

struct CallInput {
  std::vector<core::ChatMessage> messages;
  core::CallOptions options;
  std::optional<std::string> preferred_model_id;  // prompts_master.preferred_model_id
};

struct AttemptRecord {
  std::string model;
  std::optional<std::string> key_id;
  long http_status = 0;
  std::string outcome;  // "ok" or an error code
  long elapsed_ms = 0;
};

struct CallOutcome {
  core::ChatResult result;  // the final answer or the last failure
  std::optional<ModelChoice> model;
  std::optional<std::string> key_id;
  int attempts = 0;  // requests that reached (or tried to reach) a provider
  long ai_time_ms = 0;
  std::vector<AttemptRecord> history;
  std::optional<std::string> output_json;  // JSON text, in JSON mode
  long long cost_micro_usd = 0;
};

class CallExecution {
 public:
  CallExecution(Router& router, KeyHealth& health, CallInput input);

  // The next request to send. False when there is none now: the call is over (finished()),
  // or it must wait backoff_ms() first (its only keys are cooling down after a 429).
  bool next_request(http::Request& request);
  // Feeds the response of the last request; may schedule a back-off (backoff_ms()).
  void on_response(const http::Response& response);
  long backoff_ms() const { return backoff_ms_; }
  bool finished() const { return finished_; }
  const CallOutcome& outcome() const { return outcome_; }

 private:
  void next_model(core::ChatResult failure);
  void finish(core::ChatResult result);
  void schedule_retry(const core::ChatResult& failure);
  // Usage, health and cool-down of the key that answered.
  void record_key_outcome(const std::string& key, const core::ChatResult& result);

  Router& router_;
  KeyHealth& health_;
  CallInput input_;
  core::ChatRequest chat_;
  std::vector<ModelChoice> models_;
  size_t model_index_ = 0;
  int retries_on_model_ = 0;
  std::set<std::string> excluded_keys_;
  std::optional<KeyChoice> current_key_;
  std::optional<core::ChatResult> last_failure_;
  long backoff_ms_ = 0;
  // After a 429 with Retry-After on this model: the delay to wait if no other key can take
  // the retry at once (the rate-limited key cools down in the meantime).
  long rate_limit_wait_ms_ = 0;
  bool finished_ = false;
  CallOutcome outcome_;
};

// Runs one call to the end with this backend's HTTP client (cancellable).
CallOutcome run_call(Router& router, KeyHealth& health, CallInput input);
// Runs many calls side by side, at most `parallel` transfers in flight.
std::vector<CallOutcome> run_calls(Router& router, KeyHealth& health, std::vector<CallInput> inputs, size_t parallel);

}  // namespace celaest::pg
