// The HTTP endpoint's bounds: idle connections past max_connections close the oldest, so
// a flood of idle connections holds a bounded number of descriptors and /healthz still
// answers; a process out of descriptors (EMFILE) makes accept() back off instead of
// spinning; no method but GET is served on any route.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/http_server.h"
#include "tests/protocol/http_test_client.h"

namespace mtps {
namespace {

using namespace std::chrono_literals;

TEST(HttpLimits, IdleConnectionsPastTheCapCloseTheOldestAndProbesStillGetIn) {
  MetricsRegistry registry;
  HttpServer http(&registry, HttpServerOptions{.max_connections = 16});
  StatusOr<int> port = http.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();

  std::vector<std::unique_ptr<testing::RawConnection>> idle;
  for (int i = 0; i < 64; ++i) {
    idle.push_back(std::make_unique<testing::RawConnection>(*port, 2000));
    ASSERT_TRUE(idle.back()->ok()) << "connection " << i;
  }
  // Bounded wait for the server's thread to accept them all (a counter, not a sleep).
  for (int i = 0; i < 500 && http.counters().accepted < 64; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(http.counters().accepted, 64u);
  EXPECT_LE(http.counters().open, 16);
  EXPECT_GE(http.counters().evicted, 48u);
  // The oldest connection was closed by the server: it reads end-of-stream.
  bool closed = false;
  idle.front()->ReadUntilClose(&closed);
  EXPECT_TRUE(closed);

  testing::HttpReply health = testing::HttpRequest(*port, "GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(http.counters().accept_errors, 0u);
  // And on /metrics, for whoever watches the process.
  ExportHttpMetrics(&registry, http);
  const std::string page = testing::HttpRequest(*port, "GET", "/metrics").body;
  EXPECT_NE(page.find("mtps_http_evicted_connections "), std::string::npos) << page;
  EXPECT_EQ(page.find("mtps_http_evicted_connections 0\n"), std::string::npos) << page;
}

// Out of descriptors: accept() fails with EMFILE. The server must neither spin nor log a
// line per failure; it pauses, gives back the oldest connection's descriptor, and serves
// again once descriptors are free.
TEST(HttpLimits, OutOfDescriptorsTheAcceptLoopBacksOffAndRecovers) {
  MetricsRegistry registry;
  HttpServer http(&registry, HttpServerOptions{.max_connections = 1000});
  StatusOr<int> port = http.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  std::vector<std::unique_ptr<testing::RawConnection>> held;
  for (int i = 0; i < 8; ++i) held.push_back(std::make_unique<testing::RawConnection>(*port, 2000));
  for (int i = 0; i < 500 && http.counters().open < 8; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(http.counters().open, 8);
  // Sockets made now, connected once no descriptor is left: only the server needs new fds.
  std::vector<int> late;
  for (int i = 0; i < 6; ++i) late.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  // Fill every free descriptor below the highest open one, then cap the process there.
  std::vector<int> fillers;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const int top = *std::max_element(late.begin(), late.end());
  for (int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0 && fd < top;
       fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    fillers.push_back(fd);
  }
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(top + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : late) ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  // Bounded wait for the server to meet EMFILE and work through the late connections.
  for (int i = 0; i < 500 && http.counters().accept_errors == 0; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(300ms);  // a spinning loop would fail thousands of times here
  const HttpServer::Counters during = http.counters();
  ::setrlimit(RLIMIT_NOFILE, &saved);
  for (int fd : fillers) ::close(fd);
  EXPECT_GE(during.accept_errors, 1u);
  EXPECT_LE(during.accept_errors, 60u) << "accept() spun instead of backing off";
  EXPECT_GE(during.evicted, 1u) << "no descriptor was given back";
  // Descriptors free again: served as before.
  testing::HttpReply health;
  for (int i = 0; i < 50 && health.status != 200; ++i) {
    health = testing::HttpRequest(*port, "GET", "/healthz");
    if (health.status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(health.status, 200);
  for (int fd : late) ::close(fd);
}

TEST(HttpLimits, NothingButGetIsServed) {
  MetricsRegistry registry;
  HttpServer http(&registry);
  StatusOr<int> port = http.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    for (const char* target : {"/healthz", "/metrics"}) {
      EXPECT_EQ(testing::HttpRequest(*port, method, target).status, 405) << method << " " << target;
    }
  }
  EXPECT_EQ(testing::HttpRequest(*port, "GET", "/shutdown").status, 404);
}

}  // namespace
}  // namespace mtps
