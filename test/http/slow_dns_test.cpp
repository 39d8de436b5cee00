// Stopping a transfer while its host name is still being resolved.
//
// libcurl resolves in a helper thread; stopping a transfer used to join that thread, so a
// slow DNS server would hold a cancelled query hostage. This file replaces getaddrinfo()
// for this test binary (the executable's definition takes precedence over libc's for
// libcurl too) so that names under .slow-dns.test take 3 s to fail.
#include <dlfcn.h>
#include <netdb.h>

#include <gtest/gtest.h>

#include <string_view>
#include <thread>

#include "http/client.hpp"
#include "test_util.hpp"

namespace {

constexpr std::string_view kSlowSuffix = ".slow-dns.test";

bool is_slow(const char* node) {
  const std::string_view name = node != nullptr ? node : "";
  return name.size() > kSlowSuffix.size() && name.substr(name.size() - kSlowSuffix.size()) == kSlowSuffix;
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** result) {
  if (is_slow(node)) {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    return EAI_NONAME;
  }
  using Real = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "getaddrinfo"));
  return real(node, service, hints, result);
}

namespace celaest::http::test {
namespace {

using std::chrono::milliseconds;

TEST(SlowDns, AbortDoesNotWaitForTheResolver) {
  Client client;
  Request request;
  request.url = "http://api.slow-dns.test/v1/models";
  AbortAfter abort(milliseconds(110));
  const Response response = client.perform(request, abort.check());
  const long latency = abort.ms_since_deadline();
  std::cout << "[ latency  ] perform, slow DNS: " << latency << " ms\n";
  EXPECT_EQ(response.error, TransportError::Aborted) << response.error_text;
  EXPECT_LT(latency, 500);
}

TEST(SlowDns, ConnectTimeoutCoversTheLookup) {
  Client client;
  Request request;
  request.url = "http://api.slow-dns.test/v1/models";
  request.limits.connect_timeout_ms = 200;
  const auto start = std::chrono::steady_clock::now();
  const Response response = client.perform(request, kNeverAbort);
  const long took = ms_since(start);
  EXPECT_EQ(response.error, TransportError::Timeout) << response.error_text;
  EXPECT_LT(took, 1000);
}

}  // namespace
}  // namespace celaest::http::test
