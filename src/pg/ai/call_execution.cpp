// Core and HTTP headers come first: they refuse to compile after postgres.h.
#include "core/codec.hpp"
#include "core/cost.hpp"
#include "core/failure.hpp"
#include "core/json_output.hpp"
#include "core/retry_policy.hpp"
#include "core/text.hpp"
#include "http/client.hpp"

#include "pg/ai/call_execution.hpp"
#include "pg/ai/key_rate_windows.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/boundary/settings.hpp"

#include <chrono>
#include <memory>
#include <random>

namespace celaest::pg {

namespace {

// A backstop, far above what retries and fallback need, so that no pool shape can loop.
constexpr int kMaxAttemptsPerCall = 64;

http::Client& backend_client() {
  // One per backend, kept for its lifetime: connections to providers are reused across calls.
  static std::unique_ptr<http::Client> client;
  if (!client) client = std::make_unique<http::Client>();
  return *client;
}

http::Request to_transfer(core::HttpRequest encoded, long timeout_ms) {
  http::Request request;
  request.method = std::move(encoded.method);
  request.url = std::move(encoded.url);
  request.body = std::move(encoded.body);
  request.headers.reserve(encoded.headers.size());
  for (auto& header : encoded.headers) request.headers.push_back({std::move(header.name), std::move(header.value)});
  request.timeout_ms = timeout_ms;
  request.connect_timeout_ms = settings::http_connect_timeout_ms;
  request.max_response_bytes = static_cast<size_t>(settings::max_response_kb) * 1024;
  return request;
}

core::HttpResponse to_decodable(const http::Response& response) {
  core::HttpResponse decodable;
  decodable.status = response.status;
  decodable.body = response.body;
  decodable.headers.reserve(response.headers.size());
  for (const auto& header : response.headers) decodable.headers.push_back({header.name, header.value});
  return decodable;
}

core::ChatResult transport_result(const http::Response& response) {
  using http::TransportError;
  if (response.error == TransportError::Aborted) {
    // A cancel or terminate is pending: serve it now, as PostgreSQL's own ERROR (57014/57P01).
    check_for_interrupts();
  }
  if (response.error == TransportError::TooLarge) {
    core::ChatResult result;
    core::set_failure(result, core::FailureKind::TooLarge, "response_too_large");
    result.error_message = "provider response exceeded celaest.max_response_size";
    result.retryable = false;
    return result;
  }
  return core::transport_failure(response.error == TransportError::Timeout, response.error_text);
}

// Sleeps in short steps so that a cancel is served within ~10 ms.
void sleep_interruptibly(long milliseconds) {
  const int64_t until = now_ms() + milliseconds;
  while (now_ms() < until) {
    check_for_interrupts();
    pg_guarded([] { pg_usleep(10'000L); });
  }
  check_for_interrupts();
}

}  // namespace

CallExecution::CallExecution(Router& router, KeyHealth& health, CallInput input)
    : router_(router), health_(health), input_(std::move(input)) {
  chat_.messages = input_.messages;
  chat_.temperature = input_.options.temperature;
  chat_.top_p = input_.options.top_p;
  chat_.max_tokens = input_.options.max_tokens;
  chat_.json_mode = input_.options.json_mode;
  models_ = router_.candidate_models(input_.options, input_.preferred_model_id);
}

bool CallExecution::next_request(http::Request& request) {
  backoff_ms_ = 0;
  while (!finished_ && model_index_ < models_.size()) {
    const ModelChoice& model = models_[model_index_];
    current_key_ = router_.pick_key(model, excluded_keys_);
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
    const auto& codec = core::codec_for(model.provider);
    long timeout = input_.options.timeout_ms.value_or(settings::http_timeout_ms);
    request = to_transfer(codec.encode_chat(chat_, current_key_->base_url, current_key_->secret), timeout);
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

void CallExecution::on_response(const http::Response& response) {
  const ModelChoice& model = models_[model_index_];
  core::ChatResult result = response.error == http::TransportError::None
                                ? core::codec_for(model.provider).decode_chat(to_decodable(response), chat_)
                                : transport_result(response);
  // Providers echo (parts of) a rejected key in their error messages: never keep it.
  if (!current_key_->secret.empty())
    result.error_message = core::redact(std::move(result.error_message), current_key_->secret);
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

void CallExecution::record_key_outcome(const std::string& key, const core::ChatResult& result) {
  // Tokens the provider reported are billed even when the answer is refused (a blocked
  // prompt, output that is not the JSON asked for): the key's counter says so too.
  const long long tokens = result.tokens_input + result.tokens_output;
  key_rate_windows::record_tokens(key, tokens, now_ms());
  if (result.ok || result.failure == core::FailureKind::Blocked || result.failure == core::FailureKind::EmptyOutput ||
      result.failure == core::FailureKind::MalformedResponse || result.failure == core::FailureKind::BadRequest) {
    // The key worked; the request or the output was the problem.
    health_.record_successful_use(key, tokens, current_key_->has_failures);
    return;
  }
  health_.record_use(key, tokens);
  if (result.key_unhealthy) {
    health_.failed(key, true);
    excluded_keys_.insert(key);
  } else if (result.failure == core::FailureKind::RateLimited) {
    // The provider's own delay keeps every call off this key until it has passed. Without
    // one, the back-off alone paces the retry: a cool-down of the base delay outlasted the
    // jittered back-off (0..base), so the retry found its only key "cooling" and gave up.
    if (result.retry_after_ms) key_rate_windows::cool_down(key, now_ms() + *result.retry_after_ms);
  } else if (result.retryable) {
    health_.failed(key, false);
  }
}

void CallExecution::schedule_retry(const core::ChatResult& failure) {
  if (retries_on_model_ >= settings::max_retries) return next_model(failure);
  ++retries_on_model_;
  last_failure_ = failure;
  backoff_ms_ = core::backoff_delay_ms(retries_on_model_, settings::retry_base_delay_ms,
                                       settings::retry_max_delay_ms, failure.retry_after_ms, random_unit());
  if (failure.failure == core::FailureKind::RateLimited && failure.retry_after_ms && current_key_->id) {
    // The key that answered 429 cools down for its Retry-After (on_response); another key of the
    // pool may take the retry now. next_request() falls back to this wait when none can.
    rate_limit_wait_ms_ = backoff_ms_;
    backoff_ms_ = 0;
  }
}

void CallExecution::next_model(core::ChatResult failure) {
  last_failure_ = std::move(failure);
  ++model_index_;
  retries_on_model_ = 0;
  rate_limit_wait_ms_ = 0;
}

void CallExecution::finish(core::ChatResult result) {
  finished_ = true;
  if (result.ok && input_.options.json_mode) {
    if (auto parsed = core::parse_json_output(result.text)) {
      outcome_.output_json = parsed->dump();
    } else {
      core::set_failure(result, core::FailureKind::MalformedResponse, core::error_code::kInvalidJsonOutput);
      result.error_message = "the model's output is not valid JSON";
    }
  }
  if (outcome_.model) {
    try {
      outcome_.cost_micro_usd = core::cost_micro_usd(result.tokens_input, result.tokens_output,
                                                     outcome_.model->price_in_per_1k, outcome_.model->price_out_per_1k);
    } catch (const std::invalid_argument&) {
      outcome_.cost_micro_usd = 0;  // an unreadable price counts as no price
    }
  }
  outcome_.result = std::move(result);
}

CallOutcome run_call(Router& router, KeyHealth& health, CallInput input) {
  CallExecution execution(router, health, std::move(input));
  http::Request request;
  for (;;) {
    if (execution.next_request(request)) {
      http::Response response = backend_client().perform(request, [] { return interrupt_pending(); });
      execution.on_response(response);
    } else if (execution.finished()) {
      break;
    }
    if (execution.backoff_ms() > 0) sleep_interruptibly(execution.backoff_ms());
  }
  return execution.outcome();
}

std::vector<CallOutcome> run_calls(Router& router, KeyHealth& health, std::vector<CallInput> inputs, size_t parallel) {
  std::vector<std::unique_ptr<CallExecution>> executions;
  executions.reserve(inputs.size());
  for (auto& input : inputs) executions.push_back(std::make_unique<CallExecution>(router, health, std::move(input)));

  std::vector<int64_t> not_before(executions.size(), 0);
  for (;;) {
    std::vector<size_t> sending;
    std::vector<http::Request> requests;
    int64_t now = now_ms();
    int64_t earliest_wait = -1;
    for (size_t i = 0; i < executions.size(); ++i) {
      if (executions[i]->finished()) continue;
      if (not_before[i] > now) {
        earliest_wait = earliest_wait < 0 ? not_before[i] : std::min(earliest_wait, not_before[i]);
        continue;
      }
      http::Request request;
      if (executions[i]->next_request(request)) {
        sending.push_back(i);
        requests.push_back(std::move(request));
      } else if (!executions[i]->finished()) {
        // Waiting for a cooling key: come back after its delay.
        not_before[i] = now + std::max(1L, executions[i]->backoff_ms());
        earliest_wait = earliest_wait < 0 ? not_before[i] : std::min(earliest_wait, not_before[i]);
      }
    }
    if (requests.empty()) {
      if (earliest_wait < 0) break;  // everything finished
      sleep_interruptibly(earliest_wait - now);
      continue;
    }
    std::vector<http::Response> responses =
        backend_client().perform_many(requests, parallel, [] { return interrupt_pending(); });
    for (size_t k = 0; k < sending.size(); ++k) {
      CallExecution& execution = *executions[sending[k]];
      execution.on_response(responses[k]);
      not_before[sending[k]] = execution.backoff_ms() > 0 ? now_ms() + execution.backoff_ms() : 0;
    }
  }
  std::vector<CallOutcome> outcomes;
  outcomes.reserve(executions.size());
  for (const auto& execution : executions) outcomes.push_back(execution->outcome());
  return outcomes;
}

}  // namespace celaest::pg
