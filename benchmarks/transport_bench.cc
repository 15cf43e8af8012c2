// Request round trips over tcp loopback: the mtps transport (RpcClient -> RpcServer handler
// -> reply) beside raw ZeroMQ (DEALER -> ROUTER echo thread) moving the same bytes with the
// same window of requests in flight. Both sides are zero-copy at the application level.
//
//   build-rel/bin/transport_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
//
// bytes_per_second counts the request payload once per round trip; with window 1 the time
// per iteration is the round-trip latency.
#include <atomic>
#include <functional>
#include <chrono>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <glog/logging.h>
#include <zmq.hpp>

#include "protocol/transport.h"

namespace mtps {
namespace {

// Word-aligned payload, padded to whole words (referenceExternalData reads whole words).
std::shared_ptr<std::vector<uint64_t>> MakePayload(size_t bytes) {
  auto words = std::make_shared<std::vector<uint64_t>>((bytes + 7) / 8);
  for (size_t i = 0; i < words->size(); ++i) (*words)[i] = i * 0x9e3779b97f4a7c15ULL;
  return words;
}

void Report(benchmark::State& state, size_t payload) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload));
}

// ---- raw ZeroMQ ----

class RawEchoServer {
 public:
  RawEchoServer() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawEchoServer() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void Loop() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      zmq::message_t identity, payload;
      while (socket_.recv(identity, zmq::recv_flags::dontwait)) {
        (void)socket_.recv(payload);
        socket_.send(identity, zmq::send_flags::sndmore);
        socket_.send(payload, zmq::send_flags::none);  // the received message, not a copy
      }
    }
  }

  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void BM_RawZmqRoundTrip(benchmark::State& state) {
  const size_t payload = state.range(0);
  const int window = state.range(1);
  RawEchoServer server;
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(server.endpoint());
  auto data = MakePayload(payload);
  auto send = [&] {
    zmq::message_t message(data->data(), payload, nullptr, nullptr);  // constant: no copy
    socket.send(message, zmq::send_flags::none);
  };
  auto receive = [&] {
    zmq::message_t reply;
    (void)socket.recv(reply);
    if (reply.size() != payload) state.SkipWithError("raw echo came back with the wrong size");
  };
  send();
  receive();  // connected
  for (int i = 0; i < window; ++i) send();
  for (auto _ : state) {
    receive();
    send();
  }
  for (int i = 0; i < window; ++i) receive();
  Report(state, payload);
}

// ---- mtps transport ----

void ServeZeroCopyEcho(RpcServer& server) {
  server.Handle(proto::Envelope::Body::ECHO, [](IncomingMessage& request, Responder responder) {
    auto held = std::make_shared<IncomingMessage>(std::move(request));
    auto reply = responder.NewReply();
    capnp::Data::Reader echo = held->envelope().getBody().getEcho();
    reply->body().adoptEcho(reply->builder().getOrphanage().referenceExternalData(echo));
    reply->KeepAlive(std::move(held));
    responder.Send(std::move(reply));
  });
}

// mode 0: handlers on 2 worker threads, requests submitted by the benchmark thread (the
// defaults: every request crosses two extra thread hops on each side).
// mode 1: handlers on the server's I/O thread and each completion's callback submits the
// next request from the client's I/O thread: the same thread layout as the raw echo.
void BM_MtpsRoundTrip(benchmark::State& state) {
  const size_t payload = state.range(0);
  const int window = state.range(1);
  const bool io_threads_only = state.range(2) == 1;
  TransportOptions options;
  options.handler_threads = io_threads_only ? 0 : 2;
  RpcServer server(options);
  ServeZeroCopyEcho(server);
  StatusOr<int> port = server.Bind("tcp://127.0.0.1:0");
  CHECK(port.ok()) << port.status();
  CHECK(server.Start().ok());
  auto client =
      RpcClient::Connect("tcp://127.0.0.1:" + std::to_string(*port), proto::Role::CLIENT, -1);
  CHECK(client.ok()) << client.status();

  auto data = MakePayload(payload);
  const capnp::Data::Reader bytes(reinterpret_cast<const kj::byte*>(data->data()), payload);
  std::counting_semaphore<> replies(0);
  std::atomic<int> errors{0};
  std::atomic<int> in_flight{0};
  std::atomic<bool> chain{false};
  const CallOptions call_options{std::chrono::milliseconds(30000), 1};
  std::function<void()> send = [&] {
    auto request = (*client)->NewRequest();
    request->body().adoptEcho(request->builder().getOrphanage().referenceExternalData(bytes));
    request->KeepAlive(data);
    ++in_flight;
    (*client)->CallAsync(std::move(request), call_options, [&](StatusOr<IncomingMessage> reply) {
      if (!reply.ok() || reply->envelope().getBody().getEcho().size() != payload) ++errors;
      if (chain.load(std::memory_order_relaxed)) send();
      --in_flight;
      replies.release();
    });
  };
  send();
  replies.acquire();  // connected
  chain = io_threads_only;
  for (int i = 0; i < window; ++i) send();
  for (auto _ : state) {
    replies.acquire();
    if (!io_threads_only) send();
  }
  chain = false;
  while (in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (errors.load() != 0) state.SkipWithError("mtps echo failed or came back with the wrong size");
  Report(state, payload);
}

// Wall time (the round trip is spread over several threads); the CPU column is the CPU
// time of the whole process per round trip, which the machine's other load moves less.
void Sizes(benchmark::internal::Benchmark* b, bool with_mode) {
  for (int64_t payload : {int64_t{1} << 10, int64_t{64} << 10, int64_t{4} << 20}) {
    for (int64_t window : {1, 8}) {
      if (!with_mode) {
        b->Args({payload, window});
      } else {
        for (int64_t mode : {0, 1}) b->Args({payload, window, mode});
      }
    }
  }
  if (with_mode) {
    b->ArgNames({"bytes", "window", "mode"});
  } else {
    b->ArgNames({"bytes", "window"});
  }
  b->UseRealTime()->MeasureProcessCPUTime();
}

BENCHMARK(BM_RawZmqRoundTrip)->Apply([](auto* b) { Sizes(b, false); });
BENCHMARK(BM_MtpsRoundTrip)->Apply([](auto* b) { Sizes(b, true); });

}  // namespace
}  // namespace mtps

BENCHMARK_MAIN();
