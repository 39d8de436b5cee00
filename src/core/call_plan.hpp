// One logical AI call as a state machine: route → encode → (transfer) → decode → account
// decisions (API.md "Routing and failover"). The transfer is not done here, so the same plan
// runs alone (run_prompt, ai_chat: one transfer at a time) or side by side with others (the
// batch runner: many transfers at once). Pure: the key pool, the clock and the random draw
// are injected, so retries, back-off, Retry-After, key exclusion and fallback are unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/call_keys.hpp"
#include "core/call_options.hpp"
#include "core/chat.hpp"
#include "core/http_message.hpp"

namespace celaest::core {

struct CallInput {
  std::vector<ChatMessage> messages;
  CallOptions options;
  std::optional<std::string> preferred_model_id;  // prompts_master.preferred_model_id
};

// The settings a call obeys (celaest.* in the glue).
struct CallLimits {
  TransferLimits transfer;  // per request; the call's timeout_ms option replaces transfer.timeout_ms
  int max_retries = 0;      // retries per model, after the first attempt
  long retry_base_delay_ms = 0, retry_max_delay_ms = 0;
};

struct AttemptRecord {
  std::string model;
  std::optional<std::string> key_id;
  long http_status = 0;
  std::string outcome;  // "ok" or an error code
  long elapsed_ms = 0;
  long long tokens = 0;  // what the provider reported for this request (the key's tokens_used)
  bool sent = true;      // false: nothing went out (connection refused, connect timeout): not billable
};

struct CallOutcome {
  ChatResult result;  // the final answer or the last failure
  std::optional<ModelChoice> model;
  std::optional<std::string> key_id;
  int attempts = 0;  // requests that reached (or tried to reach) a provider
  long ai_time_ms = 0;
  std::vector<AttemptRecord> history;
  std::optional<std::string> output_json;  // JSON text, in JSON mode
  // What the call consumed: the usage every attempt reported (an attempt that failed after a
  // 200, e.g. DeepSeek's insufficient_system_resource, is billed too), each priced at its own
  // model's prices and rounded once. finish() puts the token sums into result.
  long long tokens_input = 0, tokens_output = 0;
  long long cost_nano_usd = 0;
  long long cost_micro_usd = 0;
  bool blocked = false;  // a key's destination was refused by the outbound guard (blocked_destination)
};

// What the plan depends on besides its input.
struct CallServices {
  KeySource& keys;
  KeyLedger& ledger;
  std::function<int64_t()> now_ms;        // wall clock, Unix ms (rate windows are shared)
  std::function<double()> random_unit;    // uniform in [0, 1): back-off jitter
};

// A backstop, far above what retries and fallback need, so that no pool shape can loop.
inline constexpr int kMaxAttemptsPerCall = 64;

class CallPlan {
 public:
  // `models`: the candidates in order, first choice first (routing's candidate_models).
  CallPlan(std::vector<ModelChoice> models, CallInput input, CallLimits limits, CallServices services);

  // The next request to send. False when there is none now: the call is over (finished()),
  // or it must wait backoff_ms() first (every usable key of the model failed in this round,
  // or the only keys are cooling down after a 429).
  //
  // Failover (API.md "Routing and failover"): a retryable failure (429, 5xx, timeout,
  // connection) or a key failure (401, 403) moves to the model's next usable key at once;
  // when every usable key of the model has failed in this round, the round is retried with
  // back-off, at most max_retries times per model; then the next model, if any. A key that
  // failed with 401/403 is not tried again in the call; nor is a key whose daily quota is
  // spent (Gemini), which moves to the next key at once and is not retried. The call's timeout_ms option bounds
  // the whole call, retries and back-off included.
  bool next_request(TransferRequest& request);
  // The same call planned again, after an earlier plan of it ended waiting for a key's
  // cool-down (the batch runner's pacing: a 429 with Retry-After): the earlier plan's requests
  // stay this call's (its attempts, their time and keys, the attempt backstop), its last
  // failure is the call's until a new request answers, and timeout_ms counts from
  // `call_started_ms`. Call before the first next_request().
  void continue_from(const CallOutcome& earlier, int64_t call_started_ms);
  // Feeds the response of the last request; may schedule a back-off (backoff_ms()). An
  // aborted transfer is the caller's to serve before (a cancel); fed here, it counts as a
  // connection failure.
  void on_response(const TransferResponse& response);
  long backoff_ms() const { return backoff_ms_; }
  bool finished() const { return finished_; }
  const CallOutcome& outcome() const { return outcome_; }
  // The key and model of the request next_request() gave last (no key id: a keyless endpoint).
  std::optional<std::string> current_key_id() const { return current_key_ ? current_key_->id : std::nullopt; }
  const std::string& current_model_id() const { return models_.at(model_index_).model_id; }

 private:
  ChatResult decode(const TransferResponse& response) const;
  void next_model(ChatResult failure);
  void refuse_destination(const ModelChoice& model);
  void finish(ChatResult result);
  // Every usable key of the model failed in this round: back off and retry the round, or go on
  // to the next model. False when the call is over.
  bool retry_round_or_next_model();
  // The whole-call deadline passed: the call ends with the last failure (or a timeout).
  bool out_of_time();
  // Usage, health and cool-down of the key that answered.
  void record_key_outcome(const std::string& key, const ChatResult& result, bool sent);
  // Adds an attempt's reported usage and its cost at `model`'s prices to the call's.
  void add_usage(const ModelChoice& model, const ChatResult& result);

  std::vector<ModelChoice> models_;
  CallInput input_;
  CallLimits limits_;
  CallServices services_;
  ChatRequest chat_;
  size_t model_index_ = 0;
  int retries_on_model_ = 0;
  std::set<std::string> excluded_keys_;   // failed with 401/403 or a spent daily quota: never again in this call
  std::set<std::string> tried_in_round_;  // failed retryably since the last back-off
  bool keyless_tried_in_round_ = false;   // the same, for a keyless endpoint (local Ollama)
  std::optional<KeyChoice> current_key_;
  std::optional<ChatResult> last_failure_;
  bool retryable_failure_in_round_ = false;  // the round may be retried with back-off
  long backoff_ms_ = 0;
  std::optional<int64_t> deadline_ms_;  // the timeout_ms option: the whole call ends by then
  bool finished_ = false;
  CallOutcome outcome_;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
