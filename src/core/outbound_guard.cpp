#include "core/outbound_guard.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>

namespace celaest::core {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool in_v4(uint32_t a, uint32_t net, int bits) {
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (a & mask) == (net & mask);
}

constexpr uint32_t v4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

AddressClass classify_v4(uint32_t a) {
  if (in_v4(a, v4(0, 0, 0, 0), 8)) return AddressClass::Unspecified;
  if (in_v4(a, v4(127, 0, 0, 0), 8)) return AddressClass::Loopback;
  if (in_v4(a, v4(169, 254, 0, 0), 16)) return AddressClass::LinkLocal;
  if (in_v4(a, v4(10, 0, 0, 0), 8) || in_v4(a, v4(172, 16, 0, 0), 12) || in_v4(a, v4(192, 168, 0, 0), 16) ||
      in_v4(a, v4(100, 64, 0, 0), 10))
    return AddressClass::Private;
  if (in_v4(a, v4(224, 0, 0, 0), 4) || in_v4(a, v4(240, 0, 0, 0), 4) || in_v4(a, v4(192, 0, 0, 0), 24) ||
      in_v4(a, v4(192, 0, 2, 0), 24) || in_v4(a, v4(198, 18, 0, 0), 15) || in_v4(a, v4(198, 51, 100, 0), 24) ||
      in_v4(a, v4(203, 0, 113, 0), 24))
    return AddressClass::Reserved;
  return AddressClass::Public;
}

}  // namespace

AddressClass classify_address(std::string_view literal) {
  const std::string text(literal);
  in_addr a4{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) return classify_v4(ntohl(a4.s_addr));
  in6_addr a6{};
  if (inet_pton(AF_INET6, text.c_str(), &a6) != 1) return AddressClass::Invalid;
  const uint8_t* b = a6.s6_addr;
  static const std::array<uint8_t, 16> kZero{};
  std::array<uint8_t, 16> bytes;
  std::memcpy(bytes.data(), b, 16);
  if (bytes == kZero) return AddressClass::Unspecified;
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  if (bytes == loopback) return AddressClass::Loopback;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address decides.
  const bool first_ten_zero = std::all_of(b, b + 10, [](uint8_t x) { return x == 0; });
  if (first_ten_zero && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0)))
    return classify_v4(v4(b[12], b[13], b[14], b[15]));
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::Private;                     // fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::LinkLocal;  // fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::Private;    // fec0::/10 (site-local)
  if (b[0] == 0xff) return AddressClass::Reserved;                             // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return AddressClass::Reserved;  // 2001:db8::/32
  // NAT64 (64:ff9b::/96) embeds an IPv4 address.
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
      std::all_of(b + 4, b + 12, [](uint8_t x) { return x == 0; }))
    return classify_v4(v4(b[12], b[13], b[14], b[15]));
  return AddressClass::Public;
}

std::string_view address_class_name(AddressClass c) {
  switch (c) {
    case AddressClass::Public: return "public";
    case AddressClass::Loopback: return "loopback";
    case AddressClass::LinkLocal: return "link-local";
    case AddressClass::Private: return "private";
    case AddressClass::Unspecified: return "unspecified";
    case AddressClass::Reserved: return "reserved";
    case AddressClass::Invalid: return "invalid";
  }
  return "invalid";
}

std::optional<UrlTarget> parse_url_target(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  UrlTarget target;
  target.scheme = lower(url.substr(0, scheme_end));
  if (target.scheme != "http" && target.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no user info
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  target.host = lower(host);
  if (port.empty()) {
    target.port = target.scheme == "https" ? 443 : 80;
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    target.port = std::stoi(std::string(port));
    if (target.port < 1 || target.port > 65535) return std::nullopt;
  }
  target.host_is_literal = classify_address(target.host) != AddressClass::Invalid;
  return target;
}

std::vector<std::string> split_allowlist(std::string_view setting) {
  std::vector<std::string> out;
  std::string current;
  for (char c : setting) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(current);
  return out;
}

std::optional<std::string> matching_prefix(std::string_view url, const std::vector<std::string>& allowlist) {
  const auto url_target = parse_url_target(url);
  if (!url_target) return std::nullopt;
  for (const std::string& prefix : allowlist) {
    const auto prefix_target = parse_url_target(prefix);
    if (!prefix_target || prefix_target->scheme != url_target->scheme || prefix_target->host != url_target->host ||
        prefix_target->port != url_target->port)
      continue;
    // Same origin; the path must continue the prefix's path at a segment boundary.
    auto path_of = [](std::string_view u) {
      std::string_view rest = u.substr(u.find("://") + 3);
      const size_t slash = rest.find_first_of("/?#");
      return slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    };
    std::string_view prefix_path = path_of(prefix);
    std::string_view url_path = path_of(url);
    if (url_path.substr(0, prefix_path.size()) != prefix_path) continue;
    if (prefix_path.empty() || prefix_path.back() == '/' || url_path.size() == prefix_path.size() ||
        url_path[prefix_path.size()] == '/' || url_path[prefix_path.size()] == '?')
      return prefix;
  }
  return std::nullopt;
}

bool private_address_allowed(const std::string& matched_prefix, std::string_view address, AddressClass c) {
  if (is_public(c)) return true;
  const auto target = parse_url_target(matched_prefix);
  if (!target) return false;
  if (target->host == "localhost") return c == AddressClass::Loopback;
  if (!target->host_is_literal) return false;
  // The same address, however it is written.
  in6_addr x{}, y{};
  in_addr x4{}, y4{};
  const std::string a(address), h(target->host);
  if (inet_pton(AF_INET, a.c_str(), &x4) == 1 && inet_pton(AF_INET, h.c_str(), &y4) == 1)
    return x4.s_addr == y4.s_addr;
  if (inet_pton(AF_INET6, a.c_str(), &x) == 1 && inet_pton(AF_INET6, h.c_str(), &y) == 1)
    return std::memcmp(&x, &y, sizeof x) == 0;
  return false;
}

}  // namespace celaest::core
