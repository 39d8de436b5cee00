#include "core/call_plan.hpp"

#include <stdexcept>
#include <utility>

#include "core/codec.hpp"
#include "core/cost.hpp"
#include "core/failure.hpp"
#include "core/json_output.hpp"
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
}

bool CallPlan::next_request(TransferRequest& request) {
  backoff_ms_ = 0;
  while (!finished_ && model_index_ < models_.size()) {
    const ModelChoice& model = models_[model_index_];
    current_key_ = services_.keys.pick(model, excluded_keys_);
    if (!current_key_ && rate_limit_wait_ms_ > 0) {
      // Every key left is cooling down after the 429: wait for it rather than give up the model.
      backoff_ms_ = rate_limit_wait_ms_;
      rate_limit_wait_ms_ = 0;
      return false;
    }
    if (!current_key_) {
      ++model_index_;  // no usable key for this provider: the next model
      retries_on_model_ = 0;
      continue;
    }
    rate_limit_wait_ms_ = 0;
    chat_.model = model.model_id;
    TransferLimits transfer = limits_.transfer;
    if (input_.options.timeout_ms) transfer.timeout_ms = *input_.options.timeout_ms;
    request = TransferRequest{codec_for(model.provider).encode_chat(chat_, current_key_->base_url, current_key_->secret),
                              transfer};
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
                                           result.ok ? "ok" : result.error_code, response.elapsed_ms});
  outcome_.model = model;
  outcome_.key_id = current_key_->id;

  if (current_key_->id) record_key_outcome(*current_key_->id, result);

  if (result.ok) return finish(std::move(result));
  if (outcome_.attempts >= kMaxAttemptsPerCall) return finish(std::move(result));
  if (result.key_unhealthy) {
    // Another key of the pool may work (no back-off); a keyless endpoint has no other key.
    if (!current_key_->id) return next_model(std::move(result));
    last_failure_ = std::move(result);
    return;
  }
  if (result.retryable) return schedule_retry(result);
  if (result.try_next_model) return next_model(std::move(result));
  finish(std::move(result));  // permanent: the request itself is wrong
}

void CallPlan::record_key_outcome(const std::string& key, const ChatResult& result) {
  KeyOutcome outcome;
  outcome.at_ms = services_.now_ms();
  // Tokens the provider reported are billed even when the answer is refused (a blocked
  // prompt, output that is not the JSON asked for): the key's counter says so too.
  outcome.tokens = result.tokens_input + result.tokens_output;
  outcome.had_failures = current_key_->has_failures;
  if (result.ok || result.failure == FailureKind::Blocked || result.failure == FailureKind::EmptyOutput ||
      result.failure == FailureKind::MalformedResponse || result.failure == FailureKind::BadRequest) {
    // The key worked; the request or the output was the problem.
    outcome.health = KeyOutcome::Health::Worked;
  } else if (result.key_unhealthy) {
    outcome.health = KeyOutcome::Health::FailedDefinitively;
    excluded_keys_.insert(key);
  } else if (result.failure == FailureKind::RateLimited) {
    // The provider's own delay keeps every call off this key until it has passed. Without
    // one, the back-off alone paces the retry: a cool-down of the base delay outlasted the
    // jittered back-off (0..base), so the retry found its only key "cooling" and gave up.
    if (result.retry_after_ms) outcome.cool_down_until_ms = outcome.at_ms + *result.retry_after_ms;
  } else if (result.retryable) {
    outcome.health = KeyOutcome::Health::Failed;
  }
  services_.ledger.record(key, outcome);
}

void CallPlan::schedule_retry(const ChatResult& failure) {
  if (retries_on_model_ >= limits_.max_retries) return next_model(failure);
  ++retries_on_model_;
  last_failure_ = failure;
  backoff_ms_ = backoff_delay_ms(retries_on_model_, limits_.retry_base_delay_ms, limits_.retry_max_delay_ms,
                                 failure.retry_after_ms, services_.random_unit());
  if (failure.failure == FailureKind::RateLimited && failure.retry_after_ms && current_key_->id) {
    // The key that answered 429 cools down for its Retry-After (on_response); another key of the
    // pool may take the retry now. next_request() falls back to this wait when none can.
    rate_limit_wait_ms_ = backoff_ms_;
    backoff_ms_ = 0;
  }
}

void CallPlan::next_model(ChatResult failure) {
  last_failure_ = std::move(failure);
  ++model_index_;
  retries_on_model_ = 0;
  rate_limit_wait_ms_ = 0;
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
  if (outcome_.model) {
    try {
      outcome_.cost_micro_usd = cost_micro_usd(result.tokens_input, result.tokens_output,
                                               outcome_.model->price_in_per_1k, outcome_.model->price_out_per_1k);
    } catch (const std::invalid_argument&) {
      outcome_.cost_micro_usd = 0;  // an unreadable price counts as no price
    }
  }
  outcome_.result = std::move(result);
}

}  // namespace celaest::core
