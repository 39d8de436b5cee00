#include "core/codec_base.hpp"

#include <exception>

#include "core/failure.hpp"
#include "core/json_output.hpp"
#include "core/retry_hint.hpp"
#include "core/text.hpp"

namespace celaest::core {
namespace {

bool is_2xx(long status) { return status >= 200 && status < 300; }

ChatResult malformed(long status, std::string message) {
  ChatResult r;
  r.http_status = status;
  set_failure(r, FailureKind::MalformedResponse);
  r.error_message = bounded_message(message);
  return r;
}

}  // namespace

std::string_view JsonCodec::base_or_default(std::string_view base_url) const {
  return is_blank(base_url) ? default_base_url(provider_) : trim(base_url);
}

HttpRequest JsonCodec::post_json(std::string url, std::string body) {
  HttpRequest req;
  req.method = "POST";
  req.url = std::move(url);
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  req.body = std::move(body);
  return req;
}

HttpRequest JsonCodec::get(std::string url) {
  HttpRequest req;
  req.method = "GET";
  req.url = std::move(url);
  req.headers = {{"Accept", "application/json"}};
  return req;
}

ChatResult JsonCodec::decode_chat(const HttpResponse& response, const ChatRequest& request) const {
  // Everything below only reads; the catch turns the unforeseen (bad_alloc included) into
  // a recorded failure instead of an exception crossing into the PostgreSQL glue.
  try {
    const long status = response.status;
    if (is_2xx(status)) {
      if (is_blank(response.body)) return malformed(status, "empty response body");
      auto body = parse_json(response.body);
      if (!body) return malformed(status, "response is not JSON: " + body_excerpt(response.body));
      if (!body->is_object()) return malformed(status, "response is not a JSON object");
      ChatResult r;
      r.http_status = status;
      read_success(*body, response, request, r);
      if (r.failure == FailureKind::None) check_output(r, request);
      return r;
    }
    auto body = parse_json(response.body);
    ChatResult r = failure_for_status(status, body ? std::string() : body_excerpt(response.body));
    r.retry_after_ms = retry_after_ms(response.headers);
    read_error(body ? &*body : nullptr, response, r);
    // JSON, but not in the provider's error shape (a bare string, a proxy's own JSON): show it.
    if (r.error_message.empty()) r.error_message = body_excerpt(response.body);
    if (r.error_message.empty()) r.error_message = "HTTP " + std::to_string(status);
    return r;
  } catch (const std::exception& e) {
    return malformed(response.status, std::string("could not decode the response: ") + e.what());
  } catch (...) {
    return malformed(response.status, "could not decode the response");
  }
}

void check_output(ChatResult& r, const ChatRequest& request) {
  if (is_blank(r.text)) {
    set_failure(r, FailureKind::EmptyOutput);
    r.error_message = "the provider returned no text (finish reason: " +
                      (r.finish_reason.empty() ? std::string("none") : r.finish_reason) + ")";
    return;
  }
  if (request.json_mode && !parse_json_output(r.text)) {
    set_failure(r, FailureKind::MalformedResponse, error_code::kInvalidJsonOutput);
    r.error_message = "JSON output was requested but the text is not valid JSON (finish reason: " +
                      (r.finish_reason.empty() ? std::string("none") : r.finish_reason) + ")";
    return;
  }
  r.ok = true;
}

}  // namespace celaest::core
