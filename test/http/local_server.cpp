#include "local_server.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

extern char** environ;

namespace celaest::http::test {

namespace {

// Spawns argv with its stdin and stdout on pipes; returns the pid.
pid_t spawn_with_pipes(const std::vector<std::string>& args, int* child_stdin, int* child_stdout) {
  int in_pipe[2];
  int out_pipe[2];
  if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, in_pipe[1]);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    throw std::runtime_error("cannot start " + args[0]);
  }
  *child_stdin = in_pipe[1];
  *child_stdout = out_pipe[0];
  return pid;
}

int run(const std::string& command) { return std::system(command.c_str()); }

}  // namespace

LocalServer::LocalServer(bool tls) {
  // Loopback must not be sent to a proxy named in the environment.
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) unsetenv(name);
  std::vector<std::string> args = {"python3", CELAEST_TEST_SERVER};
  if (tls) {
    char pattern[] = "/tmp/celaest-http-tls-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    temp_dir_ = pattern;
    const std::string cert = temp_dir_ + "/cert.pem", key = temp_dir_ + "/key.pem";
    if (run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key + " -out " +
            cert + " >/dev/null 2>&1") != 0) {
      return;  // running() stays false: the test skips
    }
    args.insert(args.end(), {"--tls", cert, key});
  }
  int child_stdout = -1;
  pid_ = spawn_with_pipes(args, &stdin_fd_, &child_stdout);
  std::string line;
  char c;
  while (read(child_stdout, &c, 1) == 1 && c != '\n') line.push_back(c);
  close(child_stdout);
  port_ = line.empty() ? 0 : std::atoi(line.c_str());
}

LocalServer::~LocalServer() {
  if (stdin_fd_ >= 0) close(stdin_fd_);  // the server exits on EOF
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  if (!temp_dir_.empty()) run("rm -rf " + temp_dir_);
}

std::string LocalServer::url(const std::string& path_and_query) const {
  return "http" + std::string(temp_dir_.empty() ? "" : "s") + "://127.0.0.1:" + std::to_string(port_) + path_and_query;
}

LocalServer& server() {
  static LocalServer instance;
  if (!instance.running()) throw std::runtime_error("test_server.py did not start");
  return instance;
}

int refused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);  // nothing listens there now
  return ntohs(address.sin_port);
}

}  // namespace celaest::http::test
