// ChildProcess: a real mtps binary started by a test, with its output in a log file, a
// bounded Wait(), and a kill at destruction so no test leaves a process behind. FreePort()
// finds a loopback port for it. The multi-process tests use these the way ps-lite's
// tests/local.sh starts its servers and workers.
//
//   ChildProcess server(BinPath("mtps-server"), {"--config", spec, "--port", "0"}, log);
//   std::optional<int> exit_code = server.Wait(std::chrono::seconds(30));
//   ASSERT_TRUE(exit_code.has_value()) << server.Log();
//
// Not thread-safe; one test thread owns a ChildProcess.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_files.h"
#include "tests/common/wait_for.h"

namespace mtps::testing {

inline std::string BinPath(const std::string& name) { return std::string(MTPS_BIN_DIR) + "/" + name; }

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// A loopback port held by a listening socket for the object's life: a process told to
// bind it must fail (EADDRINUSE).
class BusyPort {
 public:
  BusyPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && ::listen(fd_, 1) == 0) {
      socklen_t len = sizeof(addr);
      if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port_ = ntohs(addr.sin_port);
    }
  }
  ~BusyPort() { ::close(fd_); }
  BusyPort(const BusyPort&) = delete;
  BusyPort& operator=(const BusyPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = -1;
};

// The nodes refuse to start without --keys_dir or --insecure (protocol/node_security.h).
// Tests that are not about authentication run them --insecure; a test that passes either
// flag itself (the auth tests) gets exactly its own arguments.
inline std::vector<std::string> WithSecurityChoice(const std::string& binary,
                                                   std::vector<std::string> args) {
  const std::string name = binary.substr(binary.rfind('/') + 1);
  if (name != "mtps-scheduler" && name != "mtps-server" && name != "mtps-worker") return args;
  for (const std::string& a : args) {
    if (a == "--local") return args;  // in-process training opens no socket
    if (a.rfind("--keys_dir", 0) == 0 || a.rfind("--insecure", 0) == 0) return args;
  }
  args.push_back("--insecure");
  return args;
}

class ChildProcess {
 public:
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               std::string log_path)
      : log_path_(std::move(log_path)) {
    std::vector<std::string> all = {binary};
    const std::vector<std::string> chosen = WithSecurityChoice(binary, args);
    all.insert(all.end(), chosen.begin(), chosen.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
      }
      std::vector<char*> argv;
      for (std::string& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(5));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    Reap(WNOHANG);
    return pid_ > 0 && !exit_code_.has_value();
  }
  void Signal(int signal) {
    if (running()) ::kill(pid_, signal);
  }
  // The exit code (128 + signal when killed), or nothing if it still runs after `limit`.
  std::optional<int> Wait(std::chrono::milliseconds limit) {
    WaitFor([this] { return !running(); }, limit);
    return exit_code_;
  }
  std::string Log() const { return ReadFile(log_path_); }
  // The last `lines` lines of the log, for assertion messages.
  std::string LogTail(int lines = 30) const {
    std::string log = Log();
    if (log.empty()) return log;
    size_t at = log.size();
    for (int i = 0; i <= lines && at != std::string::npos && at > 0; ++i) at = log.rfind('\n', at - 1);
    return at == std::string::npos ? log : log.substr(at + 1);
  }
  const std::string& log_path() const { return log_path_; }

 private:
  void Reap(int flags) {
    if (pid_ <= 0 || exit_code_.has_value()) return;
    int status = 0;
    if (::waitpid(pid_, &status, flags) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }

  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace mtps::testing
