#include "core/call_plan.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "core/codec.hpp"
#include "core/cost.hpp"
#include "core/failure.hpp"
#include "core/json_output.hpp"
#include "core/quota_reset.hpp"
#include "core/retry_policy.hpp"
#include "core/text.hpp"

namespace celaest::core {

CallPlan::CallPlan(std::vector<ModelChoice> models, CallInput input, CallLimits limits, CallServices services)
    : models_(std::move(models)), input_(std::move(input)), limits_(limits), services_(std::move(services)) {
  chat_.messages = input_.messages;
  chat_.temperature = input_.options.temperature;
  chat_.top_p = input_.options.top_p;
  chat_.max_tokens = input_.options.max_tokens;
  chat_.json_mode = input_.options.json_mode;
  if (input_.options.timeout_ms) deadline_ms_ = services_.now_ms() + *input_.options.timeout_ms;
}

bool CallPlan::out_of_time() {
  if (!deadline_ms_ || services_.now_ms() < *deadline_ms_) return false;
  if (last_failure_) {
    finish(*last_failure_);
  } else if (outcome_.attempts > 0) {
    finish(transport_failure(true, "the call's timeout_ms elapsed"));
  } else {
    finished_ = true;  // nothing reached a provider: the caller raises LC020
  }
  return true;
}

void CallPlan::continue_from(const CallOutcome& earlier, int64_t call_started_ms) {
  outcome_.attempts = earlier.attempts;
  outcome_.ai_time_ms = earlier.ai_time_ms;
  outcome_.history = earlier.history;
  outcome_.model = earlier.model;
  outcome_.key_id = earlier.key_id;
  outcome_.blocked = earlier.blocked;
  outcome_.tokens_input = earlier.tokens_input;
  outcome_.tokens_output = earlier.tokens_output;
  outcome_.cost_nano_usd = earlier.cost_nano_usd;
  if (!earlier.result.ok && !earlier.result.error_code.empty()) last_failure_ = earlier.result;
  if (input_.options.timeout_ms) deadline_ms_ = call_started_ms + *input_.options.timeout_ms;
}

bool CallPlan::next_request(TransferRequest& request) {
  backoff_ms_ = 0;
  while (!finished_ && model_index_ < models_.size()) {
    if (out_of_time()) return false;
    const ModelChoice& model = models_[model_index_];
    std::set<std::string> not_now = excluded_keys_;
    not_now.insert(tried_in_round_.begin(), tried_in_round_.end());
    current_key_ = services_.keys.pick(model, not_now);
    if (current_key_ && !current_key_->id && keyless_tried_in_round_) current_key_.reset();
    if (!current_key_) {
      if (retry_round_or_next_model()) return false;  // wait backoff_ms(), then the next round
      continue;
    }
    if (!current_key_->blocked_reason.empty()) {
      refuse_destination(model);  // the key is not tried again; the next one may do
      continue;
    }
    chat_.model = model.model_id;
    TransferLimits transfer = limits_.transfer;
    if (deadline_ms_) {
      // Each request keeps its own bound (celaest.http_timeout) and may use no more than what
      // is left of the call's time.
      const long left = std::max<long>(1, static_cast<long>(*deadline_ms_ - services_.now_ms()));
      transfer.timeout_ms = transfer.timeout_ms > 0 ? std::min(transfer.timeout_ms, left) : left;
    }
    request = TransferRequest{codec_for(model.provider).encode_chat(chat_, current_key_->base_url, current_key_->secret),
                              transfer, current_key_->pinned_address};
    return true;
  }
  if (!finished_) {
    if (last_failure_) {
      finish(*last_failure_);
    } else {
      finished_ = true;  // nothing reached a provider: the caller raises LC020
    }
  }
  return false;
}

// The outbound guard refused the key's destination: an attempt that reached nobody (nothing is
// sent, nothing charged), recorded as blocked_destination; the call ends with it unless another
// key or model answers.
void CallPlan::refuse_destination(const ModelChoice& model) {
  ChatResult refused;
  refused.ok = false;
  refused.error_code = "blocked_destination";
  refused.error_message = "outbound call refused: " + current_key_->blocked_reason;
  outcome_.history.push_back(AttemptRecord{model.model_id, current_key_->id, 0, refused.error_code, 0, 0, false});
  outcome_.model = model;
  outcome_.key_id = current_key_->id;
  outcome_.blocked = true;
  if (current_key_->id) excluded_keys_.insert(*current_key_->id);
  last_failure_ = std::move(refused);
}

bool CallPlan::retry_round_or_next_model() {
  if (retryable_failure_in_round_ && retries_on_model_ < limits_.max_retries) {
    ++retries_on_model_;
    retryable_failure_in_round_ = false;
    tried_in_round_.clear();
    keyless_tried_in_round_ = false;
    // Retry-After (from the last 429) is honoured up to the maximum delay; the keys that
    // answered 429 cool down meanwhile, so the next round finds them usable again.
    // (Only a retryable failure's delay: a spent daily quota's RetryInfo is not this round's.)
    const std::optional<long> retry_after =
        last_failure_ && last_failure_->retryable ? last_failure_->retry_after_ms : std::nullopt;
    backoff_ms_ = backoff_delay_ms(retries_on_model_, limits_.retry_base_delay_ms, limits_.retry_max_delay_ms,
                                   retry_after, services_.random_unit());
    if (deadline_ms_) {
      const int64_t left = *deadline_ms_ - services_.now_ms();
      if (backoff_ms_ >= left) {  // the wait alone would outlast the call
        finish(*last_failure_);
        return true;
      }
    }
    if (backoff_ms_ > 0) return true;
    return false;  // no delay: the next round starts now
  }
  // No usable key left for this model (none at all, all excluded, or the retries are spent).
  ++model_index_;
  retries_on_model_ = 0;
  retryable_failure_in_round_ = false;
  tried_in_round_.clear();
  keyless_tried_in_round_ = false;
  return false;
}

ChatResult CallPlan::decode(const TransferResponse& response) const {
  if (response.error == TransportError::None)
    return codec_for(models_[model_index_].provider).decode_chat(response, chat_);
  if (response.error == TransportError::TooLarge) {
    ChatResult result;
    set_failure(result, FailureKind::TooLarge, "response_too_large");
    result.error_message = "provider response exceeded celaest.max_response_size";
    result.retryable = false;
    return result;
  }
  return transport_failure(response.error == TransportError::Timeout, response.error_text);
}

void CallPlan::on_response(const TransferResponse& response) {
  const ModelChoice& model = models_[model_index_];
  ChatResult result = decode(response);
  // Providers echo (parts of) a rejected key in their error messages: never keep it.
  if (!current_key_->secret.empty()) result.error_message = redact(std::move(result.error_message), current_key_->secret);
  ++outcome_.attempts;
  outcome_.ai_time_ms += response.elapsed_ms;
  outcome_.history.push_back(AttemptRecord{model.model_id, current_key_->id, result.http_status,
                                           result.ok ? "ok" : result.error_code, response.elapsed_ms,
                                           result.tokens_input + result.tokens_output, response.request_sent});
  outcome_.model = model;
  outcome_.key_id = current_key_->id;
  add_usage(model, result);

  if (current_key_->id) record_key_outcome(*current_key_->id, result, response.request_sent);

  if (result.ok) return finish(std::move(result));
  if (outcome_.attempts >= kMaxAttemptsPerCall) return finish(std::move(result));
  if (result.key_unhealthy) {
    // Another key of the pool may work (no back-off); a keyless endpoint has no other key.
    if (!current_key_->id) return next_model(std::move(result));
    last_failure_ = std::move(result);
    return;
  }
  if (result.key_quota_spent) {
    // The key's daily quota is spent, not the pool's: the model's next usable key at once
    // (this one is excluded for the call and cools down, see record_key_outcome); when none is
    // left, the next model; then the call fails with this answer, not retried.
    if (!current_key_->id) return next_model(std::move(result));
    last_failure_ = std::move(result);
    return;
  }
  if (result.retryable) {
    // The model's next usable key first, at once; back-off when the round has tried them all.
    if (current_key_->id) tried_in_round_.insert(*current_key_->id);
    else keyless_tried_in_round_ = true;
    retryable_failure_in_round_ = true;
    last_failure_ = std::move(result);
    return;
  }
  if (result.try_next_model) return next_model(std::move(result));
  finish(std::move(result));  // permanent: the request itself is wrong
}

void CallPlan::record_key_outcome(const std::string& key, const ChatResult& result, bool sent) {
  KeyOutcome outcome;
  outcome.sent = sent;
  outcome.at_ms = services_.now_ms();
  // Tokens the provider reported are billed even when the answer is refused (a blocked
  // prompt, output that is not the JSON asked for): the key's counter says so too.
  outcome.tokens = result.tokens_input + result.tokens_output;
  outcome.had_failures = current_key_->has_failures;
  outcome.health = key_health_after(result);
  if (outcome.health == KeyOutcome::Health::FailedDefinitively) excluded_keys_.insert(key);
  if (result.key_quota_spent) {
    // Not a bad key (its health is unchanged) but no use until the quota resets: Google resets
    // daily quotas at midnight Pacific time. Until then no call picks it; RetryInfo's delay
    // (tens of seconds) would have it picked, and refused, again and again all day.
    excluded_keys_.insert(key);
    outcome.cool_down_until_ms = next_pacific_midnight_ms(outcome.at_ms);
  } else if (result.failure == FailureKind::RateLimited) {
    // The provider's own delay keeps every call off this key until it has passed. Without
    // one, the back-off alone paces the retry: a cool-down of the base delay outlasted the
    // jittered back-off (0..base), so the retry found its only key "cooling" and gave up.
    if (result.retry_after_ms) outcome.cool_down_until_ms = outcome.at_ms + *result.retry_after_ms;
  }
  services_.ledger.record(key, outcome);
}

void CallPlan::add_usage(const ModelChoice& model, const ChatResult& result) {
  outcome_.tokens_input += result.tokens_input;
  outcome_.tokens_output += result.tokens_output;
  try {
    outcome_.cost_nano_usd +=
        cost_nano_usd(result.tokens_input, result.tokens_output, model.price_in_per_1k, model.price_out_per_1k);
  } catch (const std::invalid_argument&) {
    // an unreadable price counts as no price
  }
}

void CallPlan::next_model(ChatResult failure) {
  last_failure_ = std::move(failure);
  ++model_index_;
  retries_on_model_ = 0;
  retryable_failure_in_round_ = false;
  tried_in_round_.clear();
  keyless_tried_in_round_ = false;
}

void CallPlan::finish(ChatResult result) {
  finished_ = true;
  if (result.ok && input_.options.json_mode) {
    if (auto parsed = parse_json_output(result.text)) {
      outcome_.output_json = parsed->dump();
    } else {
      set_failure(result, FailureKind::MalformedResponse, error_code::kInvalidJsonOutput);
      result.error_message = "the model's output is not valid JSON";
    }
  }
  // The call's tokens and cost are those of all its attempts, not only the last one's.
  result.tokens_input = outcome_.tokens_input;
  result.tokens_output = outcome_.tokens_output;
  outcome_.cost_micro_usd = micro_usd_from_nano(outcome_.cost_nano_usd);
  outcome_.result = std::move(result);
}

}  // namespace celaest::core
