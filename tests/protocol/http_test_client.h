// A raw-socket HTTP client for tests: sends exact bytes (well-formed or not) over loopback
// and reads what comes back, every wait bounded by a receive timeout.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace mtps::testing {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; ok() tells whether it did.
  explicit RawConnection(int port, int timeout_ms = 5000) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { Close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return connected_; }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Everything until the peer closes (or the timeout); `closed` says which.
  std::string ReadUntilClose(bool* closed = nullptr) {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) {
        if (closed) *closed = true;
        return out;
      }
      if (n < 0) {
        if (closed) *closed = false;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

  // One whole response (headers + Content-Length body); empty on timeout or close.
  std::string ReadResponse() {
    for (;;) {
      size_t header_end = pending_.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        size_t length = 0;
        size_t at = Lower(pending_.substr(0, header_end)).find("content-length:");
        if (at != std::string::npos) length = std::strtoul(pending_.c_str() + at + 15, nullptr, 10);
        size_t total = header_end + 4 + length;
        if (pending_.size() >= total) {
          std::string response = pending_.substr(0, total);
          pending_.erase(0, total);
          return response;
        }
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return {};
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

struct HttpReply {
  int status = 0;       // 0 = no parsable reply
  std::string headers;  // raw header block, lower-cased
  std::string body;
};

inline HttpReply ParseReply(const std::string& raw) {
  HttpReply reply;
  size_t header_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || header_end == std::string::npos || raw.size() < 12) return reply;
  reply.status = std::atoi(raw.c_str() + 9);
  reply.headers = raw.substr(0, header_end);
  for (char& c : reply.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  reply.body = raw.substr(header_end + 4);
  return reply;
}

// One request on a fresh connection that asks the server to close afterwards.
inline HttpReply HttpRequest(int port, std::string_view method, std::string_view target) {
  RawConnection conn(port);
  if (!conn.ok()) return {};
  conn.Send(std::string(method) + " " + std::string(target) +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  return ParseReply(conn.ReadUntilClose());
}

}  // namespace mtps::testing
