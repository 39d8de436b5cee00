// Core and HTTP headers come first: they refuse to compile after postgres.h.
#include "core/call_plan.hpp"
#include "http/client.hpp"

#include "pg/ai/call_runner.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/ai/key_rate_windows.hpp"

#include <algorithm>
#include <memory>

namespace celaest::pg {

namespace {

// Keys for the plan: routing's pick (healthy, unexpired, admitted into the shared windows).
class RoutedKeys final : public core::KeySource {
 public:
  explicit RoutedKeys(Router& router) : router_(router) {}
  std::optional<core::KeyChoice> pick(const core::ModelChoice& model, const std::set<std::string>& excluded) override {
    return router_.pick_key(model, excluded);
  }

 private:
  Router& router_;
};

// A key's outcome written back: tokens into the shared rate windows, usage and health into
// the pool's row, a cool-down into shared memory.
class PoolLedger final : public core::KeyLedger {
 public:
  explicit PoolLedger(KeyHealth& health) : health_(health) {}
  void record(const std::string& key, const core::KeyOutcome& outcome) override {
    using Health = core::KeyOutcome::Health;
    if (!outcome.sent) {
      // Nothing went out (connection refused, a connect timeout): no usage, but the key's
      // endpoint failed all the same.
      if (outcome.health == Health::FailedDefinitively || outcome.health == Health::Failed)
        health_.failed(key, outcome.health == Health::FailedDefinitively);
      return;
    }
    key_rate_windows::record_tokens(key, outcome.tokens, outcome.at_ms);
    if (outcome.health == Health::Worked) return health_.record_successful_use(key, outcome.tokens, outcome.had_failures);
    health_.record_use(key, outcome.tokens);
    if (outcome.health == Health::FailedDefinitively) health_.failed(key, true);
    if (outcome.health == Health::Failed) health_.failed(key, false);
    if (outcome.cool_down_until_ms) key_rate_windows::cool_down(key, *outcome.cool_down_until_ms);
  }

 private:
  KeyHealth& health_;
};

core::CallServices services(RoutedKeys& keys, PoolLedger& ledger) {
  return core::CallServices{keys, ledger, [] { return now_ms(); }, [] { return random_unit(); }};
}

std::unique_ptr<core::CallPlan> plan_call(Router& router, RoutedKeys& keys, PoolLedger& ledger, CallInput input) {
  // Routing first (it raises 22023/LC020 for an unknown or missing model), then the input moves.
  std::vector<core::ModelChoice> models = router.candidate_models(input.options, input.preferred_model_id);
  return std::make_unique<core::CallPlan>(std::move(models), std::move(input), call_limits(), services(keys, ledger));
}

// An aborted transfer means a cancel or terminate is pending: serve it now, as PostgreSQL's
// own ERROR (57014/57P01), before the plan counts the response.
void serve_abort(const http::Response& response) {
  if (response.error == http::TransportError::Aborted) check_for_interrupts();
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

core::CallLimits call_limits() {
  core::CallLimits limits;
  limits.transfer = transfer_limits();
  limits.max_retries = settings::max_retries;
  limits.retry_base_delay_ms = settings::retry_base_delay_ms;
  limits.retry_max_delay_ms = settings::retry_max_delay_ms;
  return limits;
}

std::unique_ptr<core::KeySource> routed_keys(Router& router) { return std::make_unique<RoutedKeys>(router); }

std::unique_ptr<core::KeyLedger> pool_ledger(KeyHealth& health) { return std::make_unique<PoolLedger>(health); }

http::Client& backend_client() {
  static std::unique_ptr<http::Client> client;
  if (!client) client = std::make_unique<http::Client>();
  return *client;
}

core::TransferLimits transfer_limits() {
  core::TransferLimits limits;
  limits.timeout_ms = settings::http_timeout_ms;
  limits.connect_timeout_ms = settings::http_connect_timeout_ms;
  limits.max_response_bytes = static_cast<size_t>(settings::max_response_kb) * 1024;
  if (settings::http_ca_file != nullptr) limits.ca_file = settings::http_ca_file;
  return limits;
}

CallOutcome run_call(Router& router, KeyHealth& health, CallInput input, CallOutcome* interrupted) {
  RoutedKeys keys(router);
  PoolLedger ledger(health);
  std::unique_ptr<core::CallPlan> plan = plan_call(router, keys, ledger, std::move(input));
  http::Request request;
  try {
    for (;;) {
      if (plan->next_request(request)) {
        http::Response response = backend_client().perform(request, [] { return interrupt_pending(); });
        serve_abort(response);
        plan->on_response(response);
      } else if (plan->finished()) {
        break;
      }
      if (plan->backoff_ms() > 0) sleep_interruptibly(plan->backoff_ms());
    }
  } catch (const PgError& error) {
    if (interrupted) {
      *interrupted = plan->outcome();
      interrupted->result.ok = false;
      interrupted->result.error_code = "interrupted";
      interrupted->result.error_message = error.message();
    }
    throw;
  }
  return plan->outcome();
}

std::vector<CallOutcome> run_calls(Router& router, KeyHealth& health, std::vector<CallInput> inputs, size_t parallel) {
  RoutedKeys keys(router);
  PoolLedger ledger(health);
  std::vector<std::unique_ptr<core::CallPlan>> plans;
  plans.reserve(inputs.size());
  for (auto& input : inputs) plans.push_back(plan_call(router, keys, ledger, std::move(input)));

  std::vector<int64_t> not_before(plans.size(), 0);
  for (;;) {
    std::vector<size_t> sending;
    std::vector<http::Request> requests;
    int64_t now = now_ms();
    int64_t earliest_wait = -1;
    for (size_t i = 0; i < plans.size(); ++i) {
      if (plans[i]->finished()) continue;
      if (not_before[i] > now) {
        earliest_wait = earliest_wait < 0 ? not_before[i] : std::min(earliest_wait, not_before[i]);
        continue;
      }
      http::Request request;
      if (plans[i]->next_request(request)) {
        sending.push_back(i);
        requests.push_back(std::move(request));
      } else if (!plans[i]->finished()) {
        // Waiting for a cooling key: come back after its delay.
        not_before[i] = now + std::max(1L, plans[i]->backoff_ms());
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
      core::CallPlan& plan = *plans[sending[k]];
      serve_abort(responses[k]);
      plan.on_response(responses[k]);
      not_before[sending[k]] = plan.backoff_ms() > 0 ? now_ms() + plan.backoff_ms() : 0;
    }
  }
  std::vector<CallOutcome> outcomes;
  outcomes.reserve(plans.size());
  for (const auto& plan : plans) outcomes.push_back(plan->outcome());
  return outcomes;
}

}  // namespace celaest::pg
