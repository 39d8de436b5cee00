#include "core/failure.hpp"

#include <algorithm>

#include "core/text.hpp"

namespace celaest::core {
namespace {

constexpr std::size_t kMaxMessageBytes = 1000;
constexpr std::size_t kMaxExcerptBytes = 200;

struct KindRule {
  FailureKind kind;
  std::string_view code;
  bool retryable, key_unhealthy, try_next_model;
};

// One row per kind, so that the consequences of a kind are decided in one place.
constexpr KindRule kRules[] = {
    {FailureKind::Transport, error_code::kConnectionFailed, true, false, false},
    {FailureKind::Timeout, error_code::kTimeout, true, false, false},
    {FailureKind::RateLimited, error_code::kRateLimited, true, false, false},
    {FailureKind::Overloaded, error_code::kOverloaded, true, false, false},
    {FailureKind::ServerError, error_code::kServerError, true, false, false},
    {FailureKind::BadRequest, error_code::kBadRequest, false, false, false},
    {FailureKind::Auth, error_code::kAuthFailed, false, true, false},
    {FailureKind::Billing, error_code::kBilling, false, true, false},
    {FailureKind::Forbidden, error_code::kForbidden, false, true, false},
    {FailureKind::NotFound, error_code::kModelNotFound, false, false, true},
    {FailureKind::TooLarge, error_code::kTooLarge, false, false, false},
    {FailureKind::Unprocessable, error_code::kUnprocessable, false, false, false},
    {FailureKind::Blocked, error_code::kContentBlocked, false, false, false},
    {FailureKind::EmptyOutput, error_code::kEmptyOutput, false, false, false},
    {FailureKind::MalformedResponse, error_code::kMalformed, false, false, false},
};

}  // namespace

void set_failure(ChatResult& r, FailureKind kind, std::string_view code) {
  r.ok = false;
  r.failure = kind;
  r.retryable = r.key_unhealthy = r.try_next_model = r.key_quota_spent = false;
  r.error_code.clear();
  for (const auto& rule : kRules) {
    if (rule.kind != kind) continue;
    r.error_code = std::string(rule.code);
    r.retryable = rule.retryable;
    r.key_unhealthy = rule.key_unhealthy;
    r.try_next_model = rule.try_next_model;
  }
  if (!code.empty()) r.error_code = std::string(code);
}

FailureKind kind_for_status(long status) {
  switch (status) {
    case 400: return FailureKind::BadRequest;
    case 401: return FailureKind::Auth;
    case 402: return FailureKind::Billing;
    case 403: return FailureKind::Forbidden;
    case 404: return FailureKind::NotFound;
    case 408: return FailureKind::Timeout;
    case 409: return FailureKind::ServerError;  // a conflict: transient, SDKs retry it
    case 413: return FailureKind::TooLarge;
    case 422: return FailureKind::Unprocessable;
    case 429: return FailureKind::RateLimited;
    case 498: return FailureKind::Overloaded;   // Groq flex tier out of capacity
    case 502: case 503: case 529: return FailureKind::Overloaded;
    case 504: return FailureKind::Timeout;
    default: break;
  }
  if (status >= 400 && status < 500) return FailureKind::BadRequest;
  if (status >= 500 && status < 600) return FailureKind::ServerError;
  return FailureKind::MalformedResponse;  // 1xx/3xx: nothing we asked for
}

ChatResult failure_for_status(long status, std::string message) {
  ChatResult r;
  r.http_status = status;
  const FailureKind kind = kind_for_status(status);
  std::string_view code;
  if (status == 409) code = error_code::kConflict;
  if (kind == FailureKind::MalformedResponse) code = error_code::kUnexpectedStatus;
  set_failure(r, kind, code);
  r.error_message = bounded_message(message);
  return r;
}

std::string body_excerpt(std::string_view body) {
  std::string flat;
  flat.reserve(std::min(body.size(), kMaxExcerptBytes * 2));
  bool pending_space = false;
  for (char c : body) {
    if (flat.size() > kMaxExcerptBytes) break;
    if (ascii_space(c)) {
      pending_space = !flat.empty();
      continue;
    }
    if (pending_space) flat += ' ';
    pending_space = false;
    flat += c;
  }
  return truncate_utf8(flat, kMaxExcerptBytes);
}

std::string bounded_message(std::string_view message) { return truncate_utf8(trim(message), kMaxMessageBytes); }

}  // namespace celaest::core
