// Responder::OnAnswer, the hook a server's one instrumented dispatch times and counts
// requests with: it runs once per request, as the answer goes out, whether the handler
// answers at once, later from another thread, with an error, or drops the request.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps::testing {
namespace {

using Kind = proto::Envelope::Body::Which;

struct Answers {
  std::mutex mu;
  std::vector<bool> is_error;  // GUARDED_BY(mu), in the order answered
  void Add(bool error) {
    std::lock_guard<std::mutex> lock(mu);
    is_error.push_back(error);
  }
  std::vector<bool> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return is_error;
  }
};

TEST(TransportAnswerObserverTest, RunsOnceForEveryWayARequestIsAnswered) {
  Answers answers;
  RpcServer server(TransportOptions{.keys = nullptr});
  // An answer at once (ack), an error, a late answer from another thread, a dropped request.
  server.Handle(Kind::STATS, [&](IncomingMessage&, Responder responder) {
    responder.OnAnswer([&](bool error) { answers.Add(error); });
    responder.SendAck(1);
  });
  server.Handle(Kind::DENSE_PULL, [&](IncomingMessage&, Responder responder) {
    responder.OnAnswer([&](bool error) { answers.Add(error); });
    responder.SendError(Unavailable("shard moving"));
  });
  server.Handle(Kind::DENSE_INIT, [&](IncomingMessage&, Responder responder) {
    responder.OnAnswer([&](bool error) { answers.Add(error); });
    std::thread([r = std::move(responder)]() mutable { r.SendAck(2); }).detach();
  });
  server.Handle(Kind::CHECKPOINT_COMMIT, [&](IncomingMessage&, Responder responder) {
    responder.OnAnswer([&](bool error) { answers.Add(error); });
  });  // dropped: the transport answers kInternal
  const std::string endpoint = StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::CLIENT, 0, {.keys = nullptr});
  ASSERT_TRUE(client.ok()) << client.status();

  auto call = [&](auto init) {
    auto request = (*client)->NewRequest();
    init(request->body());
    return (*client)->Call(std::move(request), {}).get();
  };
  EXPECT_TRUE(call([](auto body) { body.initStats(); }).ok());
  EXPECT_EQ(answers.Get(), std::vector<bool>({false}));
  EXPECT_EQ(call([](auto body) { body.initDensePull(); }).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(answers.Get(), std::vector<bool>({false, true}));
  EXPECT_TRUE(call([](auto body) { body.initDenseInit(); }).ok());
  EXPECT_EQ(answers.Get(), std::vector<bool>({false, true, false}));
  EXPECT_EQ(call([](auto body) { body.initCheckpointCommit(); }).status().code(),
            StatusCode::kInternal);
  EXPECT_EQ(answers.Get(), std::vector<bool>({false, true, false, true}));
}

}  // namespace
}  // namespace mtps::testing
