// The call state machine (core/call_plan.hpp) with a fake key pool, a fake clock and a fixed
// random draw: retries, back-off, Retry-After, key exclusion, fallback and the accounting it
// decides, without a server or a provider (API.md "Routing and failover").
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/call_plan.hpp"
#include "core/headers.hpp"
#include "core/quota_reset.hpp"

namespace celaest::core {
namespace {

using nlohmann::json;

// The pool: keys in preference order, each serving one provider. A key cools down when the
// ledger is told so, and is not picked again before the fake clock reaches that time.
class FakePool final : public KeySource, public KeyLedger {
 public:
  explicit FakePool(const int64_t& now) : now_(now) {}

  void add(const std::string& id, Provider provider) { keys_.push_back({id, provider}); }

  std::optional<KeyChoice> pick(const ModelChoice& model, const std::set<std::string>& excluded) override {
    picks.push_back(excluded);
    for (const Key& key : keys_) {
      if (key.provider != model.provider || excluded.count(key.id)) continue;
      auto cooling = cooling_until.find(key.id);
      if (cooling != cooling_until.end() && cooling->second > now_) continue;
      return KeyChoice{key.id, "sk-secret-" + key.id, "http://" + key.id + ".test/v1", false, "", ""};
    }
    if (keyless_for_local && model.provider == Provider::Local)
      return KeyChoice{std::nullopt, "", "http://ollama.test", false, "", ""};
    return std::nullopt;
  }

  void record(const std::string& key_id, const KeyOutcome& outcome) override {
    recorded.emplace_back(key_id, outcome);
    if (outcome.cool_down_until_ms) cooling_until[key_id] = *outcome.cool_down_until_ms;
  }

  std::vector<std::set<std::string>> picks;  // the excluded set of every pick
  std::vector<std::pair<std::string, KeyOutcome>> recorded;
  std::map<std::string, int64_t> cooling_until;
  bool keyless_for_local = false;  // a local Ollama with no key in the pool is called keyless

 private:
  struct Key {
    std::string id;
    Provider provider;
  };
  const int64_t& now_;
  std::vector<Key> keys_;
};

json completion(const std::string& content, long long tokens_in = 19, long long tokens_out = 10) {
  return {{"id", "chatcmpl-1"},
          {"model", "gpt-4o-mini"},
          {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}}}, {"finish_reason", "stop"}}}},
          {"usage", {{"prompt_tokens", tokens_in}, {"completion_tokens", tokens_out}}}};
}

json error_body(const std::string& message, const std::string& type, const json& code) {
  return {{"error", {{"message", message}, {"type", type}, {"code", code}, {"param", nullptr}}}};
}

TransferResponse answer(long status, const json& body, std::vector<Header> headers = {}, long elapsed_ms = 100) {
  TransferResponse response;
  response.status = status;
  response.body = body.dump();
  response.headers = std::move(headers);
  response.elapsed_ms = elapsed_ms;
  return response;
}

TransferResponse ok(const std::string& content = "hello", long elapsed_ms = 100) {
  return answer(200, completion(content), {}, elapsed_ms);
}
TransferResponse server_error(long elapsed_ms = 100) {
  return answer(500, error_body("The server had an error", "server_error", nullptr), {}, elapsed_ms);
}
TransferResponse rate_limited(const std::string& retry_after) {
  return answer(429, error_body("Rate limit reached", "requests", "rate_limit_exceeded"), {{"Retry-After", retry_after}});
}
TransferResponse bad_key() {
  return answer(401, error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key"));
}
// Gemini's 429 for a spent per-day quota (PROVIDERS §4), with the RetryInfo it also sends.
TransferResponse gemini_daily_quota() {
  json details = json::array(
      {{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
        {"violations", {{{"quotaMetric", "generativelanguage.googleapis.com/generate_content_free_tier_requests"},
                         {"quotaId", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}}}}},
       {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", "37s"}}});
  return answer(429, {{"error", {{"code", 429}, {"message", "You exceeded your current quota."},
                                 {"status", "RESOURCE_EXHAUSTED"}, {"details", details}}}});
}
json gemini_reply(long long tokens_in = 7, long long tokens_out = 3) {
  return {{"candidates", {{{"content", {{"role", "model"}, {"parts", {{{"text", "hi"}}}}}}, {"finishReason", "STOP"}}}},
          {"usageMetadata", {{"promptTokenCount", tokens_in}, {"candidatesTokenCount", tokens_out}}}};
}
// DeepSeek's 200 whose reply was cut short for lack of capacity: transient, and billed.
TransferResponse insufficient_system_resource(long long tokens_in, long long tokens_out) {
  json body = completion("partial", tokens_in, tokens_out);
  body["choices"][0]["finish_reason"] = "insufficient_system_resource";
  return answer(200, body);
}
TransferResponse transport(TransportError error) {
  TransferResponse response;
  response.error = error;
  response.error_text = "transfer failed";
  response.elapsed_ms = 50;
  return response;
}

ModelChoice model(const std::string& model_id, Provider provider, std::string price_in = "", std::string price_out = "") {
  return ModelChoice{"id-" + model_id, model_id, provider, std::move(price_in), std::move(price_out)};
}

class CallPlanTest : public ::testing::Test {
 protected:
  CallPlanTest() {
    limits.max_retries = 2;
    limits.retry_base_delay_ms = 1000;
    limits.retry_max_delay_ms = 30000;
    limits.transfer.timeout_ms = 45000;
    limits.transfer.connect_timeout_ms = 5000;
    limits.transfer.max_response_bytes = 4096;
    input.messages = {{"user", "hi"}};
    models = {model("gpt-4o-mini", Provider::OpenAI), model("llama-3", Provider::Groq)};
  }

  CallPlan& start() {
    plan = std::make_unique<CallPlan>(models, input, limits,
                                      CallServices{pool, pool, [this] { return now; }, [this] { return jitter; }});
    return *plan;
  }

  // The next request, which must exist now (no wait): its key and model.
  struct Sent {
    std::string key;
    std::string model;
    TransferRequest request;
  };
  Sent send() {
    TransferRequest request;
    EXPECT_TRUE(plan->next_request(request)) << "expected a request now";
    EXPECT_EQ(plan->backoff_ms(), 0);
    Sent sent;
    auto authorization = find_header(request.headers, "Authorization");
    sent.key = authorization ? std::string(authorization->substr(std::string("Bearer sk-secret-").size())) : "";
    sent.model = request.body.empty() ? "" : json::parse(request.body).value("model", "");
    sent.request = std::move(request);
    return sent;
  }

  // No request now: the plan waits. Returns the wait and lets the fake clock run past it.
  long wait_out() {
    TransferRequest request;
    EXPECT_FALSE(plan->next_request(request)) << "expected a back-off";
    EXPECT_FALSE(plan->finished());
    const long waited = plan->backoff_ms();
    now += waited;
    return waited;
  }

  int64_t now = 1'700'000'000'000;
  double jitter = 0.5;
  FakePool pool{now};
  CallLimits limits;
  CallInput input;
  std::vector<ModelChoice> models;
  std::unique_ptr<CallPlan> plan;
};

TEST_F(CallPlanTest, FirstAnswerFinishesTheCallAndRecordsTheKey) {
  pool.add("A", Provider::OpenAI);
  start();
  Sent sent = send();
  EXPECT_EQ(sent.key, "A");
  EXPECT_EQ(sent.model, "gpt-4o-mini");
  EXPECT_EQ(sent.request.url, "http://A.test/v1/chat/completions");
  plan->on_response(ok("hello", 120));
  ASSERT_TRUE(plan->finished());
  const CallOutcome& outcome = plan->outcome();
  EXPECT_TRUE(outcome.result.ok);
  EXPECT_EQ(outcome.result.text, "hello");
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(outcome.ai_time_ms, 120);
  EXPECT_EQ(outcome.key_id, "A");
  ASSERT_TRUE(outcome.model);
  EXPECT_EQ(outcome.model->model_id, "gpt-4o-mini");
  ASSERT_EQ(pool.recorded.size(), 1u);
  const KeyOutcome& recorded = pool.recorded[0].second;
  EXPECT_EQ(recorded.health, KeyOutcome::Health::Worked);
  EXPECT_EQ(recorded.tokens, 29);
  EXPECT_EQ(recorded.at_ms, now);
  EXPECT_FALSE(recorded.cool_down_until_ms);
  TransferRequest none;
  EXPECT_FALSE(plan->next_request(none));
}

TEST_F(CallPlanTest, RequestsCarryTheLimitsAndTheCallsTimeoutOption) {
  pool.add("A", Provider::OpenAI);
  start();
  Sent sent = send();
  EXPECT_EQ(sent.request.limits.timeout_ms, 45000);
  EXPECT_EQ(sent.request.limits.connect_timeout_ms, 5000);
  EXPECT_EQ(sent.request.limits.max_response_bytes, 4096u);

  input.options.timeout_ms = 1500;
  start();
  EXPECT_EQ(send().request.limits.timeout_ms, 1500);
}

TEST_F(CallPlanTest, RetryableFailuresBackOffWithinTheJitterBounds) {
  pool.add("A", Provider::OpenAI);
  limits.max_retries = 3;
  start();
  // Full jitter: before retry n the wait is jitter * min(cap, base * 2^(n-1)).
  const double draws[] = {0.25, 0.5, 0.999};
  const long ceilings[] = {1000, 2000, 4000};
  for (int retry = 0; retry < 3; ++retry) {
    jitter = draws[retry];
    EXPECT_EQ(send().key, "A");
    plan->on_response(server_error());
    ASSERT_FALSE(plan->finished());
    const long waited = wait_out();
    EXPECT_LE(waited, ceilings[retry]);
    EXPECT_EQ(waited, std::lround(draws[retry] * static_cast<double>(ceilings[retry])));
  }
  EXPECT_EQ(send().key, "A");
  plan->on_response(ok());  // the fourth attempt (third retry) succeeds
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().attempts, 4);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(pool.recorded[i].second.health, KeyOutcome::Health::Failed) << i;
  EXPECT_EQ(pool.recorded[3].second.health, KeyOutcome::Health::Worked);
}

TEST_F(CallPlanTest, AZeroBackOffStartsTheNextRoundAtOnce) {
  pool.add("A", Provider::OpenAI);
  jitter = 0.0;
  start();
  send();
  plan->on_response(server_error());
  EXPECT_EQ(send().key, "A") << "a zero draw: no wait";
  EXPECT_EQ(plan->outcome().attempts, 1);
}

TEST_F(CallPlanTest, BackOffNeverExceedsTheCap) {
  pool.add("A", Provider::OpenAI);
  limits.max_retries = 10;
  limits.retry_max_delay_ms = 3000;
  jitter = 0.999999;
  start();
  long waited = 0;
  for (int retry = 0; retry < 6; ++retry) {
    send();
    plan->on_response(server_error());
    waited = wait_out();
    EXPECT_LE(waited, 3000);
  }
  EXPECT_EQ(waited, 3000);
}

TEST_F(CallPlanTest, MaxRetriesPerModelThenTheNextModel) {
  pool.add("A", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  limits.max_retries = 2;
  start();
  std::vector<std::string> sent_models;
  while (!plan->finished()) {
    TransferRequest request;
    if (!plan->next_request(request)) continue;
    sent_models.push_back(json::parse(request.body).value("model", ""));
    plan->on_response(server_error());
  }
  // One attempt and max_retries retries on each model.
  EXPECT_EQ(sent_models, (std::vector<std::string>{"gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "llama-3", "llama-3",
                                                   "llama-3"}));
  EXPECT_EQ(plan->outcome().attempts, 6);
  EXPECT_FALSE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().result.error_code, "server_error");
}

TEST_F(CallPlanTest, RetryAfterIsHonouredWhenNoOtherKeyCanTakeTheRetry) {
  pool.add("A", Provider::OpenAI);
  start();
  send();
  plan->on_response(rate_limited("5"));
  ASSERT_FALSE(plan->finished());
  EXPECT_EQ(plan->backoff_ms(), 0) << "another key may take the retry at once";
  ASSERT_EQ(pool.recorded.size(), 1u);
  EXPECT_EQ(pool.recorded[0].second.health, KeyOutcome::Health::Unchanged);
  EXPECT_EQ(pool.recorded[0].second.cool_down_until_ms, now + 5000);

  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request)) << "the only key is cooling down";
  EXPECT_FALSE(plan->finished());
  EXPECT_EQ(plan->backoff_ms(), 5000) << "the provider's delay, not the jittered back-off";

  now += 5000;
  EXPECT_EQ(send().key, "A");
  plan->on_response(ok());
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().attempts, 2);
}

TEST_F(CallPlanTest, RetryAfterIsCappedByTheMaximumDelay) {
  pool.add("A", Provider::OpenAI);
  limits.retry_max_delay_ms = 30000;
  start();
  send();
  plan->on_response(rate_limited("120"));
  EXPECT_EQ(pool.recorded[0].second.cool_down_until_ms, now + 120000) << "the key itself cools for the full delay";
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_EQ(plan->backoff_ms(), 30000) << "the call waits at most celaest.retry_max_delay_ms";
}

TEST_F(CallPlanTest, RateLimitedKeyCoolsDownAndTheRetryMovesToAnotherKey) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  start();
  EXPECT_EQ(send().key, "A");
  plan->on_response(rate_limited("20"));
  EXPECT_EQ(plan->backoff_ms(), 0);
  Sent retry = send();  // at once, no wait
  EXPECT_EQ(retry.key, "B");
  EXPECT_EQ(retry.model, "gpt-4o-mini");
  EXPECT_EQ(pool.picks.back(), (std::set<std::string>{"A"})) << "passed over in this round only";
  plan->on_response(ok());
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().key_id, "B");
}

TEST_F(CallPlanTest, RateLimitWithoutRetryAfterMovesToAnotherKeyWithoutCoolingTheFirst) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  jitter = 0.5;
  start();
  EXPECT_EQ(send().key, "A");
  plan->on_response(answer(429, error_body("Rate limit reached", "requests", "rate_limit_exceeded")));
  EXPECT_FALSE(pool.recorded[0].second.cool_down_until_ms);
  EXPECT_EQ(send().key, "B") << "the pool's next key at once";
  plan->on_response(answer(429, error_body("Rate limit reached", "requests", "rate_limit_exceeded")));
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request)) << "both keys answered 429 in this round";
  EXPECT_EQ(plan->backoff_ms(), 500) << "jittered back-off (base 1000 x 0.5)";
  EXPECT_EQ(send().key, "A") << "the next round starts again from the preferred key";
}

TEST_F(CallPlanTest, AFailingPreferredKeyGivesWayToTheNextKeyOfTheSameModelFirst) {
  // The acceptance case: a failing key of higher priority and a good key below it. The call
  // goes to the good key at once, not back to the failing one nor to another model.
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  start();
  EXPECT_EQ(send().key, "A");
  plan->on_response(server_error());
  EXPECT_EQ(plan->backoff_ms(), 0);
  Sent next = send();
  EXPECT_EQ(next.key, "B");
  EXPECT_EQ(next.model, "gpt-4o-mini");
  plan->on_response(ok());
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().key_id, "B");
  EXPECT_EQ(plan->outcome().attempts, 2);
}

TEST_F(CallPlanTest, EveryKeyOfTheModelPerRoundThenBackOffThenTheNextModel) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  limits.max_retries = 1;
  start();
  std::vector<std::string> keys;
  std::vector<long> waits;
  while (!plan->finished()) {
    TransferRequest request;
    if (!plan->next_request(request)) {
      if (plan->backoff_ms() > 0) waits.push_back(plan->backoff_ms());
      now += plan->backoff_ms();
      continue;
    }
    auto authorization = find_header(request.headers, "Authorization");
    keys.push_back(std::string(authorization->substr(std::string("Bearer sk-secret-").size())));
    plan->on_response(server_error());
  }
  // Round 1: A, B; back-off; round 2 (the one retry): A, B; then the next model's key.
  EXPECT_EQ(keys, (std::vector<std::string>{"A", "B", "A", "B", "G", "G"}));
  EXPECT_EQ(waits.size(), 2u) << "one back-off per model with max_retries = 1";
}

TEST_F(CallPlanTest, TheCallsTimeoutBoundsRetriesAndBackOff) {
  pool.add("A", Provider::OpenAI);
  limits.max_retries = 5;
  limits.retry_base_delay_ms = 1000;
  jitter = 0.5;  // 500 ms, then 1000 ms, then 2000 ms
  input.options.timeout_ms = 2000;
  start();
  send();
  now += 300;  // the first attempt took 300 ms and failed
  plan->on_response(server_error(300));
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_EQ(plan->backoff_ms(), 500);
  now += 500;
  ASSERT_TRUE(plan->next_request(request));
  EXPECT_EQ(request.limits.timeout_ms, 1200) << "what is left of the call's 2000 ms";
  now += 1000;
  plan->on_response(server_error(1000));
  // 200 ms left; the next back-off (1000 ms) would outlast the call: it ends now.
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().attempts, 2);
  EXPECT_EQ(plan->outcome().result.error_code, "server_error");
}

TEST_F(CallPlanTest, AKeylessEndpointIsRetriedWithBackOffNotInALoop) {
  models = {model("llama3.2", Provider::Local)};
  pool.keyless_for_local = true;
  limits.max_retries = 1;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(server_error());
  EXPECT_FALSE(plan->next_request(request)) << "the only endpoint failed: back off, do not spin";
  EXPECT_GT(plan->backoff_ms(), 0);
  now += plan->backoff_ms();
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(server_error());
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().attempts, 2);
}

TEST_F(CallPlanTest, AKeyThatFailedWith401Or403IsExcludedForTheRestOfTheCall) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  limits.max_retries = 3;
  start();
  EXPECT_EQ(send().key, "A");
  plan->on_response(bad_key());
  EXPECT_EQ(pool.recorded[0].second.health, KeyOutcome::Health::FailedDefinitively);
  EXPECT_EQ(plan->backoff_ms(), 0) << "another key of the pool: no back-off";
  EXPECT_EQ(send().key, "B");
  plan->on_response(answer(403, error_body("Forbidden", "invalid_request_error", nullptr)));
  // Both keys excluded: the model has no key left, the next model has none at all.
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().result.http_status, 403);
  ASSERT_GE(pool.picks.size(), 3u);
  EXPECT_EQ(pool.picks[1], (std::set<std::string>{"A"}));
  EXPECT_EQ(pool.picks[2], (std::set<std::string>{"A", "B"}));
}

TEST_F(CallPlanTest, AnExcludedKeyStaysExcludedAcrossRetries) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  start();
  EXPECT_EQ(send().key, "A");
  plan->on_response(bad_key());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(send().key, "B");
    plan->on_response(server_error());
    if (i < 2) wait_out();  // max_retries = 2: two more rounds, each B alone
  }
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  for (size_t i = 1; i < pool.picks.size(); ++i) EXPECT_TRUE(pool.picks[i].count("A")) << "pick " << i;
}

TEST_F(CallPlanTest, FallbackToTheNextModelWhenTheModelIsNotFound) {
  pool.add("A", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  start();
  EXPECT_EQ(send().model, "gpt-4o-mini");
  plan->on_response(answer(404, error_body("The model does not exist", "invalid_request_error", "model_not_found")));
  EXPECT_EQ(plan->backoff_ms(), 0);
  Sent next = send();
  EXPECT_EQ(next.model, "llama-3");
  EXPECT_EQ(next.key, "G");
  plan->on_response(ok());
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().model->model_id, "llama-3");
  EXPECT_EQ(pool.recorded[0].second.health, KeyOutcome::Health::Unchanged) << "a missing model says nothing of the key";
}

TEST_F(CallPlanTest, AModelWithoutAUsableKeyIsSkipped) {
  pool.add("G", Provider::Groq);
  start();
  EXPECT_EQ(send().model, "llama-3");
}

TEST_F(CallPlanTest, NothingReachedAProviderWhenNoModelHasAKey) {
  start();
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().attempts, 0);
  EXPECT_FALSE(plan->outcome().result.ok);
  EXPECT_FALSE(plan->outcome().model);
}

TEST_F(CallPlanTest, APermanentRequestErrorIsNotRetried) {
  pool.add("A", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  for (long status : {400L, 422L}) {
    start();
    send();
    plan->on_response(answer(status, error_body("We could not parse the JSON body", "invalid_request_error", nullptr)));
    EXPECT_TRUE(plan->finished()) << status;
    EXPECT_EQ(plan->outcome().attempts, 1) << status;
    EXPECT_EQ(plan->outcome().result.http_status, status);
    TransferRequest request;
    EXPECT_FALSE(plan->next_request(request)) << status;
  }
}

TEST_F(CallPlanTest, TimeoutsAreRetriedAnOversizedResponseIsNot) {
  pool.add("A", Provider::OpenAI);
  start();
  send();
  plan->on_response(transport(TransportError::Timeout));
  EXPECT_FALSE(plan->finished());
  EXPECT_EQ(plan->outcome().history.back().outcome, "timeout");
  wait_out();
  send();
  plan->on_response(transport(TransportError::TooLarge));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().result.error_code, "response_too_large");
  EXPECT_EQ(plan->outcome().attempts, 2);
}

TEST_F(CallPlanTest, JsonModeKeepsValidOutputAsCompactJson) {
  pool.add("A", Provider::OpenAI);
  input.options.json_mode = true;
  start();
  send();
  plan->on_response(ok("{ \"colours\" : [\"red\"] }"));
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().output_json, "{\"colours\":[\"red\"]}");
}

TEST_F(CallPlanTest, JsonModeInvalidOutputFailsButTheKeyWorkedAndTokensCount) {
  pool.add("A", Provider::OpenAI);
  input.options.json_mode = true;
  models[0].price_in_per_1k = "1";
  start();
  send();
  plan->on_response(ok("{\"colours\": [\"red\""));
  ASSERT_TRUE(plan->finished());
  const CallOutcome& outcome = plan->outcome();
  EXPECT_FALSE(outcome.result.ok);
  EXPECT_EQ(outcome.result.error_code, "invalid_json_output");
  EXPECT_FALSE(outcome.output_json);
  EXPECT_EQ(outcome.cost_micro_usd, 19000) << "19 input tokens at $1 per 1k are billed";
  EXPECT_EQ(pool.recorded[0].second.health, KeyOutcome::Health::Worked);
  EXPECT_EQ(pool.recorded[0].second.tokens, 29);
}

TEST_F(CallPlanTest, CostFromReportedTokensAndTheModelsPrices) {
  pool.add("A", Provider::OpenAI);
  // (19 × 0.0025 + 10 × 0.01) / 1000 dollars = 147.5 micro-dollars, rounded half away from zero.
  models[0].price_in_per_1k = "0.002500";
  models[0].price_out_per_1k = "0.010000";
  start();
  send();
  plan->on_response(ok());
  EXPECT_EQ(plan->outcome().cost_micro_usd, 148);

  models[0].price_in_per_1k = "";
  models[0].price_out_per_1k = "";
  start();
  send();
  plan->on_response(ok());
  EXPECT_EQ(plan->outcome().cost_micro_usd, 0) << "a model with no price costs 0";

  models[0].price_in_per_1k = "not a number";
  start();
  send();
  plan->on_response(ok());
  EXPECT_EQ(plan->outcome().cost_micro_usd, 0) << "an unreadable price counts as no price";
}

TEST_F(CallPlanTest, ADailyQuotaMovesToTheModelsNextKeyAtOnceAndCoolsTheKeyUntilPacificMidnight) {
  models = {model("gemini-2.0-flash", Provider::Gemini)};
  pool.add("A", Provider::Gemini);
  pool.add("B", Provider::Gemini);
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  EXPECT_EQ(plan->current_key_id(), "A");
  plan->on_response(gemini_daily_quota());
  ASSERT_EQ(pool.recorded.size(), 1u);
  const KeyOutcome& spent = pool.recorded[0].second;
  EXPECT_EQ(spent.health, KeyOutcome::Health::Unchanged) << "a quota, not a bad key";
  EXPECT_EQ(spent.cool_down_until_ms, next_pacific_midnight_ms(now)) << "not RetryInfo's 37 s";
  EXPECT_GT(*spent.cool_down_until_ms, now + 37000);
  ASSERT_TRUE(plan->next_request(request)) << "the model's next key at once";
  EXPECT_EQ(plan->backoff_ms(), 0);
  EXPECT_EQ(plan->current_key_id(), "B");
  EXPECT_EQ(pool.picks.back(), (std::set<std::string>{"A"}));
  plan->on_response(answer(200, gemini_reply()));
  ASSERT_TRUE(plan->finished());
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().key_id, "B");
  EXPECT_EQ(plan->outcome().attempts, 2);
  EXPECT_EQ(plan->outcome().history[0].outcome, "daily_quota_exhausted");
}

TEST_F(CallPlanTest, ADailyQuotaKeyIsNotRetriedAndTheRoundsBackOffIsNotItsRetryInfo) {
  models = {model("gemini-2.0-flash", Provider::Gemini)};
  pool.add("A", Provider::Gemini);
  pool.add("B", Provider::Gemini);
  jitter = 0.5;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(gemini_daily_quota());  // A: spent for the day
  ASSERT_TRUE(plan->next_request(request));
  EXPECT_EQ(plan->current_key_id(), "B");
  plan->on_response(answer(500, {{"error", {{"code", 500}, {"message", "internal"}, {"status", "INTERNAL"}}}}));
  EXPECT_FALSE(plan->next_request(request)) << "B failed retryably: the round backs off";
  EXPECT_EQ(plan->backoff_ms(), 500) << "the jittered back-off, not the 37 s of A's RetryInfo";
  now += plan->backoff_ms();
  ASSERT_TRUE(plan->next_request(request));
  EXPECT_EQ(plan->current_key_id(), "B") << "A stays out for the rest of the call";
  EXPECT_EQ(pool.picks.back(), (std::set<std::string>{"A"}));
}

TEST_F(CallPlanTest, ADailyQuotaOnTheLastKeyEndsTheCallWithoutRetries) {
  models = {model("gemini-2.0-flash", Provider::Gemini)};
  pool.add("A", Provider::Gemini);
  limits.max_retries = 2;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(gemini_daily_quota());
  EXPECT_FALSE(plan->next_request(request));
  ASSERT_TRUE(plan->finished()) << "no back-off, no retry";
  EXPECT_EQ(plan->outcome().attempts, 1);
  EXPECT_EQ(plan->outcome().result.error_code, "daily_quota_exhausted");
  EXPECT_FALSE(plan->outcome().result.retryable);

  // Another call, an hour later, does not pick the spent key: nothing reaches the provider.
  now += 3'600'000;
  start();
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().attempts, 0);
  // After midnight Pacific time it is picked again.
  now = next_pacific_midnight_ms(now);
  start();
  ASSERT_TRUE(plan->next_request(request));
  EXPECT_EQ(plan->current_key_id(), "A");
}

TEST_F(CallPlanTest, ADailyQuotaOnTheModelsLastKeyFallsBackToTheNextModel) {
  models = {model("gemini-2.0-flash", Provider::Gemini), model("llama-3", Provider::Groq)};
  pool.add("A", Provider::Gemini);
  pool.add("G", Provider::Groq);
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(gemini_daily_quota());
  Sent next = send();
  EXPECT_EQ(next.key, "G");
  EXPECT_EQ(next.model, "llama-3");
  plan->on_response(ok());
  EXPECT_TRUE(plan->outcome().result.ok);
}

TEST_F(CallPlanTest, TokensAndCostSumEveryAttemptThatReportedUsage) {
  // DeepSeek's insufficient_system_resource is a 200 with usage, retried: the call consumed both.
  models = {model("deepseek-chat", Provider::DeepSeek, "0.002500", "0.010000")};
  pool.add("D", Provider::DeepSeek);
  limits.retry_base_delay_ms = 0;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(insufficient_system_resource(10, 5));
  EXPECT_FALSE(plan->finished());
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(answer(200, completion("done", 10, 5)));
  ASSERT_TRUE(plan->finished());
  const CallOutcome& outcome = plan->outcome();
  EXPECT_TRUE(outcome.result.ok);
  EXPECT_EQ(outcome.result.tokens_input, 20);
  EXPECT_EQ(outcome.result.tokens_output, 10);
  EXPECT_EQ(outcome.tokens_input, 20);
  EXPECT_EQ(outcome.tokens_output, 10);
  // (20 × 0.0025 + 10 × 0.01) / 1000 dollars = 150 micro-dollars.
  EXPECT_EQ(outcome.cost_micro_usd, 150);
  ASSERT_EQ(outcome.history.size(), 2u);
  EXPECT_EQ(outcome.history[0].outcome, "overloaded");
  EXPECT_EQ(outcome.history[0].tokens, 15);
  EXPECT_EQ(outcome.history[1].tokens, 15);
  ASSERT_EQ(pool.recorded.size(), 2u);
  EXPECT_EQ(pool.recorded[0].second.tokens + pool.recorded[1].second.tokens, 30) << "the key's books agree";
}

TEST_F(CallPlanTest, AttemptsOnDifferentModelsArePricedAtTheirOwnPricesAndRoundedOnce) {
  // Fallback after a billed failure: each attempt at its own model's prices, summed exactly.
  models = {model("gpt-4o-mini", Provider::OpenAI, "0.002500", "0.010000"),
            model("llama-3", Provider::Groq, "0.001500", "0.001500")};
  pool.add("A", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  limits.max_retries = 0;
  start();
  send();
  plan->on_response(answer(200, [] {
    json body = completion("partial", 19, 10);
    body["choices"][0]["finish_reason"] = "insufficient_system_resource";
    return body;
  }()));
  send();  // no retries left on gpt-4o-mini: llama-3
  plan->on_response(answer(200, completion("done", 19, 10)));
  ASSERT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().result.tokens_input, 38);
  EXPECT_EQ(plan->outcome().result.tokens_output, 20);
  // 147.5 + (29 × 1.5 = 43.5) = 191 micro-dollars exactly; rounding each (148 + 44) would say 192.
  EXPECT_EQ(plan->outcome().cost_micro_usd, 191);
}

TEST_F(CallPlanTest, AFailedCallStillCountsTheTokensItsAttemptsReported) {
  models = {model("deepseek-chat", Provider::DeepSeek, "0.001000", "0.001000")};
  pool.add("D", Provider::DeepSeek);
  limits.max_retries = 1;
  limits.retry_base_delay_ms = 0;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(insufficient_system_resource(10, 5));
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(insufficient_system_resource(10, 5));
  EXPECT_FALSE(plan->next_request(request));
  ASSERT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().result.error_code, "overloaded");
  EXPECT_EQ(plan->outcome().result.tokens_input, 20);
  EXPECT_EQ(plan->outcome().result.tokens_output, 10);
  EXPECT_EQ(plan->outcome().cost_micro_usd, 30);
}

TEST_F(CallPlanTest, TheHistoryListsEveryAttempt) {
  pool.add("A", Provider::OpenAI);
  pool.add("B", Provider::OpenAI);
  pool.add("G", Provider::Groq);
  limits.max_retries = 0;
  start();
  send();
  plan->on_response(bad_key());                // A: 401, excluded
  send();
  plan->on_response(server_error(250));        // B: 500, no retries left: next model
  send();
  plan->on_response(ok("done", 80));           // G on llama-3
  const auto& history = plan->outcome().history;
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].model, "gpt-4o-mini");
  EXPECT_EQ(history[0].key_id, "A");
  EXPECT_EQ(history[0].http_status, 401);
  EXPECT_EQ(history[0].outcome, "auth_failed");
  EXPECT_EQ(history[1].key_id, "B");
  EXPECT_EQ(history[1].http_status, 500);
  EXPECT_EQ(history[1].outcome, "server_error");
  EXPECT_EQ(history[1].elapsed_ms, 250);
  EXPECT_EQ(history[2].model, "llama-3");
  EXPECT_EQ(history[2].key_id, "G");
  EXPECT_EQ(history[2].http_status, 200);
  EXPECT_EQ(history[2].outcome, "ok");
  EXPECT_EQ(plan->outcome().attempts, 3);
  EXPECT_EQ(plan->outcome().ai_time_ms, 100 + 250 + 80);
}

TEST_F(CallPlanTest, ProviderMessagesNeverKeepTheKey) {
  pool.add("A", Provider::OpenAI);
  start();
  send();
  plan->on_response(answer(401, error_body("Incorrect API key provided: sk-secret-A", "invalid_request_error",
                                           "invalid_api_key")));
  EXPECT_EQ(plan->outcome().history.size(), 1u);
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_EQ(plan->outcome().result.error_message.find("sk-secret-A"), std::string::npos)
      << plan->outcome().result.error_message;
}

TEST_F(CallPlanTest, APlanContinuedAfterACoolDownKeepsTheEarlierAttempts) {
  // The batch runner's pacing: a call whose retries ended on a 429 with Retry-After waits for
  // the key's cool-down and is planned again; the new plan carries the earlier requests.
  pool.add("A", Provider::OpenAI);
  limits.max_retries = 0;
  input.options.timeout_ms = 60000;
  const int64_t call_started = now;
  start();
  send();
  plan->on_response(rate_limited("2"));
  TransferRequest request;
  EXPECT_FALSE(plan->next_request(request));
  ASSERT_TRUE(plan->finished()) << "no retries left: this plan ends on the 429";
  const CallOutcome earlier = plan->outcome();
  ASSERT_EQ(earlier.result.error_code, "rate_limited");

  now += 1000;  // still cooling: the new plan finds no key and ends with the earlier failure
  start();
  plan->continue_from(earlier, call_started);
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().result.error_code, "rate_limited");
  EXPECT_EQ(plan->outcome().attempts, 1);

  now += 1500;  // cooled down
  start();
  plan->continue_from(earlier, call_started);
  EXPECT_EQ(send().key, "A");
  plan->on_response(ok("done", 80));
  EXPECT_TRUE(plan->outcome().result.ok);
  EXPECT_EQ(plan->outcome().attempts, 2);
  ASSERT_EQ(plan->outcome().history.size(), 2u);
  EXPECT_EQ(plan->outcome().history[0].http_status, 429);
  EXPECT_EQ(plan->outcome().history[1].outcome, "ok");
  EXPECT_EQ(plan->outcome().ai_time_ms, 100 + 80);

  // timeout_ms counts from the call's start, not from the new plan's.
  now = call_started + 60000;
  start();
  plan->continue_from(earlier, call_started);
  EXPECT_FALSE(plan->next_request(request));
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(plan->outcome().result.error_code, "rate_limited");
}

TEST_F(CallPlanTest, APlanContinuedKeepsTheEarlierAttemptsUsage) {
  models = {model("deepseek-chat", Provider::DeepSeek, "0.001000", "0.001000")};
  pool.add("D", Provider::DeepSeek);
  limits.max_retries = 0;
  start();
  TransferRequest request;
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(insufficient_system_resource(10, 5));
  EXPECT_FALSE(plan->next_request(request));
  ASSERT_TRUE(plan->finished());
  const CallOutcome earlier = plan->outcome();
  start();
  plan->continue_from(earlier, now);
  ASSERT_TRUE(plan->next_request(request));
  plan->on_response(answer(200, completion("done", 10, 5)));
  EXPECT_EQ(plan->outcome().result.tokens_input, 20);
  EXPECT_EQ(plan->outcome().result.tokens_output, 10);
  EXPECT_EQ(plan->outcome().cost_micro_usd, 30);
}

TEST_F(CallPlanTest, SixtyFourAttemptsEndAnyCall) {
  pool.add("A", Provider::OpenAI);
  limits.max_retries = 1000;
  limits.retry_base_delay_ms = 0;
  start();
  int sent = 0;
  while (!plan->finished() && sent < 1000) {
    TransferRequest request;
    if (!plan->next_request(request)) continue;
    ++sent;
    plan->on_response(server_error());
  }
  EXPECT_TRUE(plan->finished());
  EXPECT_EQ(sent, kMaxAttemptsPerCall);
  EXPECT_EQ(plan->outcome().attempts, 64);
  EXPECT_EQ(plan->outcome().result.error_code, "server_error");
}

}  // namespace
}  // namespace celaest::core
