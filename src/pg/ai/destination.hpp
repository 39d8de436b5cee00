// The outbound guard at the PostgreSQL side (API.md): a base URL named by an API key that a
// superuser did not set must match celaest.allowed_base_urls, and every address its host
// resolves to must be public unless a superuser allowlisted that address. The decision is
// core::outbound_guard's; this file resolves the name once and pins the transfer to the
// address it checked.
#pragma once

#include <string>

namespace celaest::pg {

struct Destination {
  bool allowed = false;
  std::string reason;          // why not (names the host and the address class, never a secret)
  std::string pinned_address;  // http::Request::pinned_address when allowed
};

// Blocking: resolves the host (getaddrinfo, or celaest.resolve_override).
Destination check_destination(const std::string& base_url);

}  // namespace celaest::pg
