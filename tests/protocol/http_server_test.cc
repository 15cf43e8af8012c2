// Tests of HttpServer over real loopback sockets: routes, health states, keep-alive,
// malformed and oversized requests, clients that vanish mid-request, Stop().
#include "protocol/http_server.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/protocol/http_test_client.h"

namespace mtps {
namespace {

using ::mtps::testing::HttpReply;
using ::mtps::testing::HttpRequest;
using ::mtps::testing::ParseReply;
using ::mtps::testing::RawConnection;
using ::testing::HasSubstr;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<int> port = server_.Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // The server still answers a well-behaved client.
  void ExpectStillServing() {
    HttpReply reply = HttpRequest(port_, "GET", "/healthz");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, "ok\n");
  }

  MetricsRegistry registry_;
  HttpServer server_{&registry_};
  int port_ = 0;
};

TEST_F(HttpServerTest, BindsAnEphemeralPort) {
  EXPECT_GT(port_, 0);
  EXPECT_EQ(server_.port(), port_);
  HttpServer other(&registry_);
  StatusOr<int> other_port = other.Start("127.0.0.1", 0);
  ASSERT_TRUE(other_port.ok()) << other_port.status();
  EXPECT_NE(*other_port, port_);
}

TEST_F(HttpServerTest, HealthzIsOkByDefault) { ExpectStillServing(); }

TEST_F(HttpServerTest, HealthzReportsTheHealthCheckReason) {
  std::atomic<bool> healthy{false};
  server_.SetHealthCheck([&]() -> Status {
    return healthy ? Status::OK() : Unavailable("restoring table 'user' from checkpoint 7");
  });
  HttpReply reply = HttpRequest(port_, "GET", "/healthz");
  EXPECT_EQ(reply.status, 503);
  EXPECT_THAT(reply.body, HasSubstr("UNAVAILABLE: restoring table 'user' from checkpoint 7"));
  healthy = true;
  ExpectStillServing();
}

TEST_F(HttpServerTest, MetricsServesTheRegistry) {
  registry_.AddCounter("mtps_requests_total", "Requests.", {{"kind", "sparse_pull"}})->Increment(3);
  HttpReply reply = HttpRequest(port_, "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.headers, HasSubstr("content-type: text/plain; version=0.0.4"));
  EXPECT_EQ(reply.body, registry_.Render());
  EXPECT_THAT(reply.body, HasSubstr("mtps_requests_total{kind=\"sparse_pull\"} 3\n"));
  // A query string does not change the route.
  EXPECT_EQ(HttpRequest(port_, "GET", "/metrics?format=text").status, 200);
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  HttpReply reply = HttpRequest(port_, "GET", "/nothing/here");
  EXPECT_EQ(reply.status, 404);
  EXPECT_THAT(reply.body, HasSubstr("/nothing/here"));
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD"}) {
    HttpReply reply = HttpRequest(port_, method, "/metrics");
    EXPECT_EQ(reply.status, 405) << method;
    EXPECT_THAT(reply.headers, HasSubstr("allow: get")) << method;
  }
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawConnection conn(port_);
  ASSERT_TRUE(conn.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    HttpReply reply = ParseReply(conn.ReadResponse());
    EXPECT_EQ(reply.status, 200) << "request " << i;
    EXPECT_EQ(reply.body, "ok\n");
  }
  // Two pipelined requests in one write.
  ASSERT_TRUE(conn.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(ParseReply(conn.ReadResponse()).status, 200);
  EXPECT_EQ(ParseReply(conn.ReadResponse()).status, 404);
}

TEST_F(HttpServerTest, MalformedRequestGets400AndTheServerGoesOn) {
  for (const char* garbage : {"GARBAGE\r\n\r\n", "GET /healthz HTTX/1.1\r\n\r\n",
                              "GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
                              "\x01\x02\x03\xff\r\n\r\n"}) {
    RawConnection conn(port_);
    ASSERT_TRUE(conn.ok());
    conn.Send(garbage);
    bool closed = false;
    HttpReply reply = ParseReply(conn.ReadUntilClose(&closed));
    EXPECT_EQ(reply.status, 400) << "for " << ::testing::PrintToString(std::string(garbage));
    EXPECT_TRUE(closed);
  }
  ExpectStillServing();
}

TEST_F(HttpServerTest, OversizedRequestIsRefused) {
  RawConnection conn(port_);
  ASSERT_TRUE(conn.ok());
  conn.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  HttpReply reply = ParseReply(conn.ReadUntilClose());
  EXPECT_EQ(reply.status, 431);
  ExpectStillServing();

  RawConnection body_conn(port_);
  body_conn.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
  EXPECT_EQ(ParseReply(body_conn.ReadUntilClose()).status, 413);
  ExpectStillServing();
}

TEST_F(HttpServerTest, ClientsThatDisconnectMidRequestCostNothing) {
  for (int i = 0; i < 50; ++i) {
    RawConnection conn(port_);
    ASSERT_TRUE(conn.ok());
    conn.Send(i % 2 ? "GET /heal" : "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
  }  // each closes here, half-way through its request
  // And one that asks, then leaves before reading the answer.
  {
    RawConnection conn(port_);
    conn.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  ExpectStillServing();
}

TEST_F(HttpServerTest, ConcurrentClientsAllGetAnswers) {
  Counter* hits = registry_.AddCounter("hits_total", "h");
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        hits->Increment();
        if (HttpRequest(port_, "GET", i % 2 ? "/metrics" : "/healthz").status == 200) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 160);
  EXPECT_THAT(HttpRequest(port_, "GET", "/metrics").body, HasSubstr("hits_total 160\n"));
}

TEST_F(HttpServerTest, StopClosesOpenConnectionsAndTheListener) {
  RawConnection idle(port_);
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(idle.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(ParseReply(idle.ReadResponse()).status, 200);  // connection kept open
  server_.Stop();
  bool closed = false;
  idle.ReadUntilClose(&closed);
  EXPECT_TRUE(closed) << "Stop() left a keep-alive connection open";
  EXPECT_FALSE(RawConnection(port_).ok()) << "still accepting after Stop()";
  EXPECT_EQ(server_.port(), 0);
  server_.Stop();  // idempotent
  EXPECT_FALSE(server_.Start("127.0.0.1", 0).ok());
}

TEST(HttpServerOptionsTest, IdleConnectionIsClosedAfterTheTimeout) {
  HttpServer server(nullptr, HttpServerOptions{.idle_timeout = std::chrono::milliseconds(200)});
  StatusOr<int> port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  RawConnection conn(*port, /*timeout_ms=*/5000);
  ASSERT_TRUE(conn.ok());
  conn.Send("GET /hea");  // and then nothing
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  conn.ReadUntilClose(&closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  // A null registry serves an empty page.
  HttpReply reply = HttpRequest(*port, "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "");
}

TEST(HttpServerBindTest, PortInUseIsAnErrorNamingTheAddress) {
  HttpServer first(nullptr);
  StatusOr<int> port = first.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  HttpServer second(nullptr);
  StatusOr<int> again = second.Start("127.0.0.1", *port);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(again.status().message(), HasSubstr("127.0.0.1:" + std::to_string(*port)));
  EXPECT_EQ(HttpServer(nullptr).Start("127.0.0.1", 70000).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mtps
