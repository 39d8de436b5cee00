// How a failed call is classified: the kind, the stable error_code we record, and what the
// caller may do next (retry, mark the key unhealthy, try another model) — PROVIDERS.md §4.
#pragma once

#include <string>
#include <string_view>

#include "core/chat.hpp"

namespace celaest::core {

// The stable codes recorded in processed_tasks.error_code.
namespace error_code {
inline constexpr std::string_view kConnectionFailed = "connection_failed";
inline constexpr std::string_view kTimeout = "timeout";
inline constexpr std::string_view kRateLimited = "rate_limited";
inline constexpr std::string_view kDailyQuota = "daily_quota_exhausted";
inline constexpr std::string_view kOverloaded = "overloaded";
inline constexpr std::string_view kServerError = "server_error";
inline constexpr std::string_view kConflict = "conflict";
inline constexpr std::string_view kBadRequest = "bad_request";
inline constexpr std::string_view kAuthFailed = "auth_failed";
inline constexpr std::string_view kBilling = "billing";
inline constexpr std::string_view kForbidden = "forbidden";
inline constexpr std::string_view kModelNotFound = "model_not_found";
inline constexpr std::string_view kTooLarge = "request_too_large";
inline constexpr std::string_view kUnprocessable = "unprocessable";
inline constexpr std::string_view kContentBlocked = "content_blocked";
inline constexpr std::string_view kEmptyOutput = "empty_output";
inline constexpr std::string_view kMalformed = "malformed_response";
inline constexpr std::string_view kInvalidJsonOutput = "invalid_json_output";
inline constexpr std::string_view kUnexpectedStatus = "unexpected_status";
}  // namespace error_code

// Marks r as failed with `kind`, setting error_code (the kind's default unless `code` is
// given), retryable, key_unhealthy and try_next_model from the kind. Keeps everything else.
void set_failure(ChatResult& r, FailureKind kind, std::string_view code = {});

// The kind an HTTP status means before the body is read (§4's table by status).
FailureKind kind_for_status(long status);

// A failed result for a non-2xx status: http_status, classification by status alone and
// the message. Codecs then refine it from the error body.
ChatResult failure_for_status(long status, std::string message);

// A bounded, single-line excerpt of a body that is not a JSON error (an HTML page from a
// proxy), so the record says something without storing megabytes.
std::string body_excerpt(std::string_view body);

// Provider messages are stored as-is but bounded.
std::string bounded_message(std::string_view message);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
