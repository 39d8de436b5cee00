// Helpers shared by the codec tests: building responses and reading built requests.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/chat.hpp"
#include "core/headers.hpp"
#include "core/provider.hpp"

namespace celaest::core {
// So that parameterized test names read "openai", not "4-byte object <03-00 00-00>".
inline void PrintTo(Provider provider, std::ostream* os) { *os << provider_name(provider); }
}  // namespace celaest::core

namespace celaest::core::test {

inline HttpResponse response(long status, std::string body, std::vector<Header> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

inline HttpResponse json_response(long status, const nlohmann::json& body, std::vector<Header> headers = {}) {
  return response(status, body.dump(), std::move(headers));
}

// The request's header value, or "<absent>" so that a failed expectation reads clearly.
inline std::string header(const HttpRequest& req, std::string_view name) {
  auto v = find_header(req.headers, name);
  return v ? std::string(*v) : std::string("<absent>");
}

inline nlohmann::json body_of(const HttpRequest& req) { return nlohmann::json::parse(req.body); }

inline ChatRequest simple_request(std::string model, std::string user_text) {
  ChatRequest r;
  r.model = std::move(model);
  r.messages = {{"user", std::move(user_text)}};
  return r;
}

}  // namespace celaest::core::test
