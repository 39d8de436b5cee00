// Starts test_server.py on a free loopback port for the tests of this binary.
#pragma once

#include <sys/types.h>

#include <string>

namespace celaest::http::test {

class LocalServer {
 public:
  // Plain HTTP, or HTTPS with a self-signed certificate when `tls` (needs the openssl CLI).
  explicit LocalServer(bool tls = false);
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  bool running() const { return port_ != 0; }
  int port() const { return port_; }
  std::string url(const std::string& path_and_query) const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;  // closing it ends the server
  int port_ = 0;
  std::string temp_dir_;
};

// The plain server shared by every test in this process, started on first use.
LocalServer& server();

// A loopback port nobody listens on (bound, then released).
int refused_port();

}  // namespace celaest::http::test
