// The HTTP endpoint every mtps process serves: GET /healthz and GET /metrics (Prometheus
// text format), over Boost.Beast on a thread of its own.
//
//   MetricsRegistry registry;
//   HttpServer http(&registry);
//   http.SetHealthCheck([&] { return ready ? Status::OK() : Unavailable("restoring"); });
//   StatusOr<int> port = http.Start("0.0.0.0", FLAGS_http_port);   // 0 = any free port
//   ...
//   http.Stop();
//
// Routes: GET /healthz → 200 "ok", or 503 with the health check's message; GET /metrics →
// 200 with registry->Render(); any other path → 404; any other method → 405. Nothing
// served over HTTP changes any state. Requests over `max_request_bytes`, malformed
// requests and clients that go quiet or disconnect mid-request only cost their own
// connection. Connections are kept alive (HTTP/1.1), at most `max_connections` at once:
// a new one closes the oldest, so idle connections cannot exhaust file descriptors and a
// probe (a kubelet's /healthz) still gets in. When accept() fails (EMFILE: the process is
// out of descriptors) the server backs off, 10 ms doubling to 1 s, logging once per
// episode instead of spinning.
//
// Which interface to bind is the caller's flag: every binary's --host (servers and the
// scheduler default to 0.0.0.0 so that Kubernetes probes reach them; workers to 127.0.0.1).
//
// Thread-safety: Start() and Stop() are called by the owner; SetHealthCheck() and port()
// may be called from any thread at any time. The health check runs on the HTTP thread
// and must be thread-safe and quick.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "protocol/metrics.h"
#include "base/status.h"

namespace mtps {

struct HttpServerOptions {
  size_t max_request_bytes = 16 * 1024;        // header + body of one request
  std::chrono::milliseconds idle_timeout{30000};  // a connection quiet this long is closed
  int max_connections = 256;                      // open at once; a new one closes the oldest
};

class HttpServer {
 public:
  // `registry` must outlive the server; null serves an empty /metrics.
  explicit HttpServer(const MetricsRegistry* registry, HttpServerOptions options = {});
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // OK = healthy. Without a check the process is healthy while it serves.
  void SetHealthCheck(std::function<Status()> check);

  // Binds host:port (port 0 = any free port), starts the HTTP thread, returns the bound
  // port. Fails with kUnavailable naming the address when it cannot bind, and with
  // kFailedPrecondition when already started.
  StatusOr<int> Start(const std::string& host, int port);
  // Closes the listener and every connection, then joins the thread. Idempotent.
  void Stop();

  int port() const;  // 0 before Start()

  struct Counters {
    uint64_t accepted = 0;
    uint64_t evicted = 0;        // closed to make room under max_connections
    uint64_t accept_errors = 0;  // failed accept() calls (EMFILE, ...), each followed by a pause
    int open = 0;                // connections open now
  };
  Counters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// mtps_http_connections (open now), mtps_http_evicted_connections and
// mtps_http_accept_errors on `registry`, read from `http` at each scrape. `http` must
// outlive the registry's scrapes (declare the registry first).
void ExportHttpMetrics(MetricsRegistry* registry, const HttpServer& http);

}  // namespace mtps
