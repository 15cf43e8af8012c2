// HttpServer: Boost.Beast asynchronous HTTP/1.1 on one io_context thread; one Session
// object per connection reads a request, answers it, and reads the next.
#include "protocol/http_server.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <glog/logging.h>

namespace mtps {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response MakeResponse(http::status status, unsigned version, bool keep_alive, std::string body,
                      const char* content_type = "text/plain; charset=utf-8") {
  Response res{status, version};
  res.set(http::field::server, "mtps");
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// Errors after which the connection is simply gone: nobody left to answer.
bool IsDisconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == beast::error::timeout || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe;
}

class Session;

// Everything the connections need; HttpServer::Impl is this and nothing more.
struct ServerCore {
  const MetricsRegistry* registry;
  HttpServerOptions options;

  std::mutex health_mutex;
  std::shared_ptr<const std::function<Status()>> health_check;  // GUARDED_BY(health_mutex)

  std::unique_ptr<asio::io_context> ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
  std::atomic<int> port{0};
  std::mutex lifecycle_mutex;  // serializes Start/Stop
  bool started = false;        // GUARDED_BY(lifecycle_mutex)

  // Connections in the order they were accepted (the oldest first); touched only on the
  // io_context thread. Expired entries are pruned as they reach the front.
  std::list<std::weak_ptr<Session>> sessions;
  std::atomic<int> open{0};
  std::atomic<uint64_t> accepted{0}, evicted{0}, accept_errors{0};
  std::unique_ptr<asio::steady_timer> backoff_timer;
  std::chrono::milliseconds backoff{0};  // 0 = accept() is working

  Response Route(const Request& req) {
    const bool keep_alive = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target != "/healthz" && target != "/metrics") {
      return MakeResponse(http::status::not_found, req.version(), keep_alive,
                          "not found: " + std::string(target) + "\n");
    }
    if (req.method() != http::verb::get) {
      Response res = MakeResponse(http::status::method_not_allowed, req.version(), keep_alive,
                                  "method " + std::string(req.method_string()) +
                                      " not allowed; use GET\n");
      res.set(http::field::allow, "GET");
      return res;
    }
    if (target == "/metrics") {
      return MakeResponse(http::status::ok, req.version(), keep_alive,
                          registry ? registry->Render() : std::string(),
                          "text/plain; version=0.0.4; charset=utf-8");
    }
    std::shared_ptr<const std::function<Status()>> check;
    {
      std::lock_guard<std::mutex> lock(health_mutex);
      check = health_check;
    }
    Status health = check ? (*check)() : Status::OK();
    if (health.ok()) return MakeResponse(http::status::ok, req.version(), keep_alive, "ok\n");
    return MakeResponse(http::status::service_unavailable, req.version(), keep_alive,
                        health.ToString() + "\n");
  }

  void Accept();
  void Admit(tcp::socket socket);
  void BackOff(const beast::error_code& ec);
};

// One connection. Kept alive by the shared_ptr that each pending operation holds.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerCore* server)
      : stream_(std::move(socket)), server_(server) {
    server_->open.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() { server_->open.fetch_sub(1, std::memory_order_relaxed); }

  // Closes the connection to make room for a newer one; pending operations end aborted.
  void Evict() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_request_bytes));
    parser_->body_limit(server_->options.max_request_bytes);
    stream_.expires_after(server_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      if (IsDisconnect(ec)) return Close();
      // Malformed or oversized: tell the client why, then hang up.
      http::status status = http::status::bad_request;
      if (ec == http::error::body_limit) status = http::status::payload_too_large;
      if (ec == http::error::header_limit) status = http::status::request_header_fields_too_large;
      VLOG(1) << "http: bad request from " << Peer() << ": " << ec.message();
      return Write(MakeResponse(status, 11, false, "bad request: " + ec.message() + "\n"));
    }
    Write(server_->Route(parser_->get()));
  }

  void Write(Response res) {
    response_ = std::move(res);
    stream_.expires_after(server_->options.idle_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (!self->response_.keep_alive()) return self->CloseGracefully();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Half-closes, then reads and discards until the client closes (bounded by a short
  // timeout): closing with unread input would send a reset that can destroy the answer
  // (a 400 or 413) before the client reads it.
  void CloseGracefully() {
    Close();
    stream_.expires_after(std::min<std::chrono::steady_clock::duration>(
        server_->options.idle_timeout, std::chrono::seconds(2)));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->Drain();
                            });
  }

  std::string Peer() {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  beast::tcp_stream stream_;
  ServerCore* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  char drain_buffer_[1024];
};

void ServerCore::Accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // Stop()
    if (ec) return BackOff(ec);
    if (backoff.count() > 0) {
      LOG(INFO) << "http: accepting connections again";
      backoff = std::chrono::milliseconds(0);
    }
    Admit(std::move(socket));
    Accept();
  });
}

void ServerCore::Admit(tcp::socket socket) {
  accepted.fetch_add(1, std::memory_order_relaxed);
  // Make room first: the oldest connections go (idle ones by far the most likely).
  while (!sessions.empty() && open.load(std::memory_order_relaxed) >= options.max_connections) {
    std::shared_ptr<Session> oldest = sessions.front().lock();
    sessions.pop_front();
    if (oldest == nullptr) continue;  // already closed
    oldest->Evict();
    evicted.fetch_add(1, std::memory_order_relaxed);
  }
  auto session = std::make_shared<Session>(std::move(socket), this);
  sessions.push_back(session);
  // Closed connections leave expired entries behind; drop them now and then.
  if (sessions.size() > 2 * static_cast<size_t>(std::max(options.max_connections, 1))) {
    sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
  }
  session->Read();
}

void ServerCore::BackOff(const beast::error_code& ec) {
  accept_errors.fetch_add(1, std::memory_order_relaxed);
  constexpr std::chrono::milliseconds kFirst{10}, kMost{1000};
  // One line per episode: accept() can fail thousands of times a second when out of fds.
  if (backoff.count() == 0) {
    LOG(WARNING) << "http: accept failed (" << ec.message()
                 << "); pausing, then retrying with backoff up to 1 s";
  }
  backoff = backoff.count() == 0 ? kFirst : std::min(kMost, backoff * 2);
  // Out of descriptors, the oldest connection gives one back.
  if (ec == asio::error::no_descriptors) {
    while (!sessions.empty()) {
      std::shared_ptr<Session> oldest = sessions.front().lock();
      sessions.pop_front();
      if (oldest == nullptr) continue;
      oldest->Evict();
      evicted.fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  if (backoff_timer == nullptr) backoff_timer = std::make_unique<asio::steady_timer>(*ioc);
  backoff_timer->expires_after(backoff);
  backoff_timer->async_wait([this](beast::error_code wait_ec) {
    if (wait_ec == asio::error::operation_aborted) return;  // Stop()
    Accept();
  });
}

}  // namespace

struct HttpServer::Impl : ServerCore {};

HttpServer::HttpServer(const MetricsRegistry* registry, HttpServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->registry = registry;
  impl_->options = options;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::SetHealthCheck(std::function<Status()> check) {
  auto shared = check ? std::make_shared<const std::function<Status()>>(std::move(check)) : nullptr;
  std::lock_guard<std::mutex> lock(impl_->health_mutex);
  impl_->health_check = std::move(shared);
}

StatusOr<int> HttpServer::Start(const std::string& host, int port) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
  if (impl_->started) return FailedPrecondition("http server already started");
  const std::string where = "http://" + host + ":" + std::to_string(port);
  if (port < 0 || port > 65535) return InvalidArgument("http port out of range: " + where);

  auto ioc = std::make_unique<asio::io_context>(1);
  auto acceptor = std::make_unique<tcp::acceptor>(*ioc);
  beast::error_code ec;
  tcp::resolver resolver(*ioc);
  auto endpoints = resolver.resolve(host, std::to_string(port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Unavailable("cannot resolve " + where + ": " + (ec ? ec.message() : "no address"));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + where + ": " + ec.message());
  const int bound = acceptor->local_endpoint(ec).port();
  if (ec) return Unavailable("cannot read the bound port of " + where + ": " + ec.message());

  impl_->ioc = std::move(ioc);
  impl_->acceptor = std::move(acceptor);
  impl_->port = bound;
  impl_->started = true;
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc->run(); });
  LOG(INFO) << "http: serving /healthz and /metrics on " << host << ":" << bound;
  return bound;
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
  if (!impl_->ioc) return;
  impl_->ioc->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Destroying the io_context destroys the pending handlers, which own the sessions, so
  // every connection closes here.
  impl_->acceptor.reset();
  impl_->backoff_timer.reset();
  impl_->sessions.clear();
  impl_->ioc.reset();
  impl_->port = 0;
}

int HttpServer::port() const { return impl_->port.load(); }

HttpServer::Counters HttpServer::counters() const {
  return Counters{impl_->accepted.load(std::memory_order_relaxed),
                  impl_->evicted.load(std::memory_order_relaxed),
                  impl_->accept_errors.load(std::memory_order_relaxed),
                  impl_->open.load(std::memory_order_relaxed)};
}

void ExportHttpMetrics(MetricsRegistry* registry, const HttpServer& http) {
  if (registry == nullptr) return;
  registry->AddGaugeFunction("mtps_http_connections", "HTTP connections open now.", {},
                             [&http] { return static_cast<double>(http.counters().open); });
  registry->AddGaugeFunction(
      "mtps_http_evicted_connections",
      "HTTP connections closed to stay under the connection cap (or to free a descriptor).", {},
      [&http] { return static_cast<double>(http.counters().evicted); });
  registry->AddGaugeFunction("mtps_http_accept_errors",
                             "Failed accept() calls (EMFILE, ...), each followed by a pause.", {},
                             [&http] { return static_cast<double>(http.counters().accept_errors); });
}

}  // namespace mtps
