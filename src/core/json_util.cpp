#include "core/json_util.hpp"

#include <charconv>
#include <cmath>

#include "core/text.hpp"

namespace celaest::core {

std::optional<Json> parse_json(std::string_view body) {
  // allow_exceptions=false: a parse error yields a "discarded" value instead of a throw.
  Json parsed = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

const Json* member(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

std::string string_at(const Json& j, std::string_view key) {
  const Json* v = member(j, key);
  return (v != nullptr && v->is_string()) ? v->get<std::string>() : std::string();
}

namespace {

long long as_count(long double value) {
  if (!(value > 0)) return 0;  // negative, zero or NaN
  return value >= static_cast<long double>(kMaxCount) ? kMaxCount : static_cast<long long>(value);
}

}  // namespace

long long count_at(const Json& j, std::string_view key) {
  const Json* v = member(j, key);
  if (v == nullptr) return 0;
  if (v->is_number_integer()) return as_count(static_cast<long double>(v->get<long long>()));
  if (v->is_number_unsigned()) return as_count(static_cast<long double>(v->get<unsigned long long>()));
  if (v->is_number_float()) {
    const double d = v->get<double>();
    return std::isfinite(d) ? as_count(d) : 0;
  }
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    std::string_view t = trim(s);
    long long out = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return (ec == std::errc() && ptr == t.data() + t.size()) ? as_count(static_cast<long double>(out)) : 0;
  }
  return 0;
}

std::string dump_body(const nlohmann::ordered_json& body) {
  return body.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace celaest::core
