// A server that stops right after answering still delivers its answers: the scheduler's
// shutdown ack is the case that matters (a server exits the moment it has acked, and the
// scheduler used to wait out its shutdown timeout for an ack that was never sent).
#include <future>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

constexpr int kRequests = 64;

TEST(TransportStop, RepliesGivenBeforeStopReachTheirCallers) {
  TransportOptions options;
  options.handler_threads = 2;
  RpcServer server(options);
  std::mutex mutex;
  std::vector<Responder> held;
  std::promise<void> all_answered;
  // Every request is held until the last arrives, then all are answered at once, and the
  // test stops the server without waiting: the replies are still in the server's queues.
  server.Handle(proto::Envelope::Body::ECHO, [&](IncomingMessage&, Responder responder) {
    std::vector<Responder> release;
    {
      std::lock_guard<std::mutex> lock(mutex);
      held.push_back(std::move(responder));
      if (held.size() == kRequests) release.swap(held);
    }
    if (release.empty()) return;
    for (Responder& r : release) r.SendAck();
    all_answered.set_value();
  });
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  std::vector<std::future<StatusOr<IncomingMessage>>> calls;
  for (int i = 0; i < kRequests; ++i) {
    auto request = (*client)->NewRequest();
    request->body().setEcho(testing::AsData("stop"));
    calls.push_back((*client)->Call(std::move(request), {std::chrono::milliseconds(5000), 1}));
  }
  all_answered.get_future().wait();
  server.Stop();

  int delivered = 0;
  for (auto& call : calls) {
    ASSERT_EQ(call.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    StatusOr<IncomingMessage> reply = call.get();
    if (reply.ok()) ++delivered;
  }
  EXPECT_EQ(delivered, kRequests) << "answers given before Stop() were dropped";
}

}  // namespace
}  // namespace mtps
