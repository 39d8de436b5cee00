// Core headers come first: they refuse to compile after postgres.h (core/cpp_only.hpp).
#include "core/outbound_guard.hpp"

#include "pg/ai/destination.hpp"
#include "pg/boundary/settings.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <vector>

namespace celaest::pg {

namespace {

// celaest.resolve_override first ("host=address, ..."), else DNS. Every address returned.
std::vector<std::string> resolve(const std::string& host) {
  std::vector<std::string> addresses;
  if (core::classify_address(host) != core::AddressClass::Invalid) return {host};
  if (settings::resolve_override != nullptr) {
    for (const std::string& entry : core::split_allowlist(settings::resolve_override)) {
      const size_t eq = entry.find('=');
      if (eq != std::string::npos && entry.substr(0, eq) == host) addresses.push_back(entry.substr(eq + 1));
    }
    if (!addresses.empty()) return addresses;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return addresses;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (inet_ntop(a->ai_family, raw, text, sizeof text) != nullptr) addresses.emplace_back(text);
  }
  freeaddrinfo(found);
  return addresses;
}

}  // namespace

Destination check_destination(const std::string& base_url) {
  Destination verdict;
  const auto target = core::parse_url_target(base_url);
  if (!target) {
    verdict.reason = "the base URL is not an http(s) URL with a host";
    return verdict;
  }
  const auto prefix =
      core::matching_prefix(base_url, core::split_allowlist(settings::allowed_base_urls ? settings::allowed_base_urls : ""));
  if (!prefix) {
    verdict.reason = "host " + target->host + " is not in celaest.allowed_base_urls";
    return verdict;
  }
  const std::vector<std::string> addresses = resolve(target->host);
  if (addresses.empty()) {
    verdict.reason = "host " + target->host + " does not resolve";
    return verdict;
  }
  // Every answer must pass: the transfer is pinned to one of them, but a name that also
  // resolves inward is refused outright rather than raced.
  for (const std::string& address : addresses) {
    const core::AddressClass c = core::classify_address(address);
    if (!core::private_address_allowed(*prefix, address, c)) {
      verdict.reason = "host " + target->host + " resolves to a " + std::string(core::address_class_name(c)) +
                       " address (" + address + ")";
      return verdict;
    }
  }
  verdict.allowed = true;
  const std::string& pinned = addresses.front();
  // "+": the entry times out like any resolved one, so a later transfer is not held to it.
  verdict.pinned_address = "+" + target->host + ":" + std::to_string(target->port) + ":" +
                           (pinned.find(':') != std::string::npos ? "[" + pinned + "]" : pinned);
  return verdict;
}

}  // namespace celaest::pg
