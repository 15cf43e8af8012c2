// Many requests in flight at once over tcp loopback: the server holds every request until
// all have arrived, so all 10,000 are provably in flight together, then answers them all.
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <thread>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

constexpr int kRequests = 10000;

uint64_t PayloadOf(int i) { return 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i + 1); }

TEST(TransportInFlight, TenThousandRequestsAtOnceAllCompleteWithTheirAnswers) {
  // Held until the last request arrives, then answered from the handler thread that got it.
  struct Held {
    uint64_t value;
    Responder responder;
  };
  std::mutex mutex;
  std::vector<Held> held;
  held.reserve(kRequests);

  TransportOptions options;
  options.handler_threads = 2;
  RpcServer server(options);
  server.Handle(proto::Envelope::Body::ECHO, [&](IncomingMessage& request, Responder responder) {
    uint64_t value;
    auto echo = request.envelope().getBody().getEcho();
    ASSERT_EQ(echo.size(), sizeof(value));
    std::memcpy(&value, echo.begin(), sizeof(value));
    std::vector<Held> release;
    {
      std::lock_guard<std::mutex> lock(mutex);
      held.push_back(Held{value, std::move(responder)});
      if (held.size() == kRequests) release.swap(held);
    }
    for (Held& h : release) {
      auto reply = h.responder.NewReply();
      // Answer with value + 1 so an echo of the wrong request cannot pass.
      const uint64_t answer = h.value + 1;
      reply->body().setEcho(
          capnp::Data::Reader(reinterpret_cast<const kj::byte*>(&answer), sizeof(answer)));
      h.responder.Send(std::move(reply));
    }
  });
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  std::mutex done_mutex;
  std::condition_variable all_done;
  int completed = 0;
  int wrong = 0;
  std::vector<Status> failures;
  for (int i = 0; i < kRequests; ++i) {
    auto request = (*client)->NewRequest();
    const uint64_t value = PayloadOf(i);
    request->body().setEcho(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(&value), sizeof(value)));
    (*client)->CallAsync(std::move(request), {std::chrono::milliseconds(20000), 1},
                         [&, i](StatusOr<IncomingMessage> reply) {
                           std::lock_guard<std::mutex> lock(done_mutex);
                           if (!reply.ok()) {
                             failures.push_back(reply.status());
                           } else {
                             uint64_t answer = 0;
                             auto echo = reply->envelope().getBody().getEcho();
                             if (echo.size() == sizeof(answer)) {
                               std::memcpy(&answer, echo.begin(), sizeof(answer));
                             }
                             if (answer != PayloadOf(i) + 1) ++wrong;
                           }
                           if (++completed == kRequests) all_done.notify_all();
                         });
  }
  std::unique_lock<std::mutex> lock(done_mutex);
  ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(8),
                                [&] { return completed == kRequests; }))
      << completed << " of " << kRequests << " completed";
  EXPECT_EQ(wrong, 0);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  EXPECT_EQ(server.counters().requests, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(server.counters().rejected, 0u);
}

TEST(TransportInFlight, ManyThreadsShareOneClient) {
  RpcServer server(TransportOptions{});
  testing::ServeEcho(server);
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kThreads = 8;
  constexpr int kCallsEach = 200;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) {
        const std::string payload = "thread " + std::to_string(t) + " call " + std::to_string(i);
        StatusOr<std::string> echoed = testing::Echo(**client, payload);
        if (echoed.ok() && *echoed == payload) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kThreads * kCallsEach);
}

TEST(TransportInFlight, InlineHandlersAndCallsChainedFromCallbacks) {
  // handler_threads = 0: handlers run on the server's I/O thread; each callback issues the
  // next call from the client's I/O thread. Both take the short paths that skip a mailbox.
  TransportOptions options;
  options.handler_threads = 0;
  RpcServer server(options);
  testing::ServeEcho(server);
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kChains = 4;
  constexpr int kLinks = 250;
  std::mutex mutex;
  std::condition_variable done;
  int finished_chains = 0;
  int good = 0;
  std::function<void(int, int)> call = [&](int chain, int link) {
    auto request = (*client)->NewRequest();
    const std::string payload = std::to_string(chain) + "/" + std::to_string(link);
    request->body().setEcho(testing::AsData(payload));
    (*client)->CallAsync(std::move(request), {std::chrono::milliseconds(5000), 1},
                         [&, chain, link, payload](StatusOr<IncomingMessage> reply) {
                           const bool ok =
                               reply.ok() &&
                               testing::AsString(reply->envelope().getBody().getEcho()) == payload;
                           std::unique_lock<std::mutex> lock(mutex);
                           if (ok) ++good;
                           if (!ok || link + 1 == kLinks) {
                             if (++finished_chains == kChains) done.notify_all();
                             return;
                           }
                           lock.unlock();
                           call(chain, link + 1);
                         });
  };
  for (int c = 0; c < kChains; ++c) call(c, 0);
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(8), [&] { return finished_chains == kChains; }));
  EXPECT_EQ(good, kChains * kLinks);
  EXPECT_EQ(server.counters().requests, static_cast<uint64_t>(kChains * kLinks));
}

}  // namespace
}  // namespace mtps
