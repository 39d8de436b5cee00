// Provider-neutral chat call: what the glue asks for and the outcome a codec reports (the
// HTTP messages between them are in core/http_message.hpp). Plain data, no behaviour.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/http_message.hpp"

namespace celaest::core {

struct ChatMessage {
  std::string role;  // system|user|assistant
  std::string content;
};

struct ChatRequest {
  std::string model;                  // the provider's model id, e.g. "gpt-4o-mini"
  std::vector<ChatMessage> messages;  // may contain system messages anywhere
  std::optional<double> temperature, top_p;
  std::optional<int> max_tokens;
  bool json_mode = false;
};

enum class FailureKind {
  None, Transport, Timeout, RateLimited, Overloaded, ServerError, BadRequest, Auth, Billing,
  Forbidden, NotFound, TooLarge, Unprocessable, Blocked, EmptyOutput, MalformedResponse
};

struct ChatResult {
  bool ok = false;
  std::string text;           // joined output text (Anthropic prefill: already prepended);
                              // also kept on output-level failures (blocked, invalid JSON)
  std::string finish_reason;  // provider's own value, e.g. "stop", "end_turn", "STOP"
  long long tokens_input = 0, tokens_output = 0;  // as billed; kept on failures after a 200
  std::string request_id;      // header or body id per PROVIDERS §3
  std::string provider_model;  // model echoed by the provider, if any

  // failure side
  FailureKind failure = FailureKind::None;
  std::string error_code;     // short stable code, see failure.hpp
  std::string error_message;  // the provider's message, bounded; never contains request headers
  long http_status = 0;
  bool retryable = false;      // PROVIDERS §4 retry rule
  bool key_unhealthy = false;  // the key itself is bad: 401, 403, API_KEY_INVALID, billing
  bool try_next_model = false; // 404 model not found etc.
  // The key's quota for the day is spent (Gemini's per-day QuotaFailure): not retryable and not
  // a bad key; the model's other keys may still serve, this one not before the quota resets.
  bool key_quota_spent = false;
  std::optional<long> retry_after_ms;  // server's requested delay, if it gave one
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
