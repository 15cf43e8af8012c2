// The HTTP endpoint's bounds: idle connections past max_connections close the oldest, so
// a flood of idle connections holds a bounded number of descriptors and /healthz still
// answers; no method but GET is served on any route.
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
