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
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_files.h"
#include "tests/common/wait_for.h"

namespace mtps::testing {

inline std::string BinPath(const std::string& name) { return std::string(MTPS_BIN_DIR) + "/" + name; }

// A TCP port on 127.0.0.1 that was free a moment ago, for a process to bind next. It is
// drawn below the kernel's ephemeral range (ip_local_port_range): a port the kernel hands
// out for bind(0) or an outgoing connection (servers with --port 0, every client socket,
// other tests' processes) can then never be the one a process was told to bind, which
// happened while it was starting (CI: "address in use").
// Binds `fd` to 127.0.0.1:`port` (0: the kernel picks); the bound port, or -1.
inline int BindLoopback(int fd, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

inline int FreePort() {
  auto try_bind = [](int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int bound = BindLoopback(fd, port);
    ::close(fd);
    return bound;
  };
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  static std::mt19937 pick(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  if (ephemeral_low - 1 > kLowest) {
    std::uniform_int_distribution<int> port(kLowest, ephemeral_low - 1);
    for (int attempt = 0; attempt < 200; ++attempt) {
      const int bound = try_bind(port(pick));
      if (bound > 0) return bound;
    }
  }
  return try_bind(0);  // no room below the ephemeral range: the kernel's pick
}

// A loopback port held by a listening socket for the object's life: a process told to
// bind it must fail (EADDRINUSE).
class BusyPort {
 public:
  BusyPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int bound = BindLoopback(fd_, 0);
    if (bound > 0 && ::listen(fd_, 1) == 0) port_ = bound;
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
