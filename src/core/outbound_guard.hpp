// The outbound guard (API.md, "Who is calling, and who may act for whom"): which base URLs a
// key set by a non-superuser may name, and which resolved addresses a transfer may reach.
// Pure logic: resolution and the pinned transfer are the caller's (src/pg/ai/destination).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace celaest::core {

enum class AddressClass {
  Public,
  Loopback,     // 127.0.0.0/8, ::1
  LinkLocal,    // 169.254.0.0/16 (the cloud metadata address among them), fe80::/10
  Private,      // 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT), fc00::/7
  Unspecified,  // 0.0.0.0/8, ::
  Reserved,     // multicast, broadcast, 240/4, documentation and benchmarking ranges
  Invalid,      // not an IPv4 or IPv6 literal
};

// Classifies an IPv4 or IPv6 literal (IPv4-mapped IPv6 addresses as their IPv4 address).
AddressClass classify_address(std::string_view literal);

// Only public addresses are reachable without an explicit allowance.
inline bool is_public(AddressClass c) { return c == AddressClass::Public; }

std::string_view address_class_name(AddressClass c);

// The parts of an http(s) URL the guard needs. nullopt for anything else (other schemes,
// user info, no host).
struct UrlTarget {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower case; an IPv6 literal without its brackets
  int port = 0;        // explicit, else 80/443
  bool host_is_literal = false;
};
std::optional<UrlTarget> parse_url_target(std::string_view url);

// celaest.allowed_base_urls: comma- or whitespace-separated URL prefixes.
std::vector<std::string> split_allowlist(std::string_view setting);

// The entry of the allowlist that url starts with, compared case-insensitively in the scheme
// and host and at a boundary (the prefix ends the URL, or is followed by '/', ':' or '?', or
// itself ends in '/'), so that "https://api.openai.com" does not admit
// "https://api.openai.com.evil.test".
std::optional<std::string> matching_prefix(std::string_view url, const std::vector<std::string>& allowlist);

// Whether a non-public address may be reached for this URL: only when the allowlist entry it
// matched names that very address literal (or "localhost" for loopback) as its host, i.e. a
// superuser allowlisted the address itself, not merely a name that happens to resolve to it.
bool private_address_allowed(const std::string& matched_prefix, std::string_view address, AddressClass c);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
