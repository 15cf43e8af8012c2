// Deadlines and retries: a call that gets no answer in time is sent again with the same
// request id, up to max_attempts, then fails with kDeadlineExceeded; late replies are
// ignored; a handler that drops its Responder still answers (kInternal).
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/transport.h"
#include "tests/common/wait_for.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Records every attempt it sees and keeps the Responders unanswered, so nothing replies
// unless the test says so.
struct SilentServer {
  std::mutex mutex;
  std::vector<uint64_t> attempt_ids;  // request id of each attempt, in arrival order
  std::vector<Responder> held;
  int answer_from_attempt = 0;  // 0 = never; n = answer the n-th attempt (1-based)
  RpcServer server{TransportOptions{}};
  std::string endpoint;

  SilentServer() {
    server.Handle(proto::Envelope::Body::ECHO, [this](IncomingMessage& request, Responder r) {
      std::lock_guard<std::mutex> lock(mutex);
      attempt_ids.push_back(request.envelope().getRequestId());
      if (answer_from_attempt != 0 &&
          static_cast<int>(attempt_ids.size()) >= answer_from_attempt) {
        auto reply = r.NewReply();
        reply->body().setEcho(request.envelope().getBody().getEcho());
        r.Send(std::move(reply));
      } else {
        held.push_back(std::move(r));
      }
    });
    endpoint = testing::StartOnLoopback(server);
  }
  void AnswerFromAttempt(int attempt) {
    std::lock_guard<std::mutex> lock(mutex);
    answer_from_attempt = attempt;
  }
  std::vector<uint64_t> Attempts() {
    std::lock_guard<std::mutex> lock(mutex);
    return attempt_ids;
  }
};

TEST(TransportTimeout, UnansweredCallFailsWithDeadlineExceeded) {
  SilentServer silent;
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  const auto start = Clock::now();
  StatusOr<std::string> echoed = testing::Echo(**client, "anyone?", {milliseconds(150), 1});
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.status().code(), StatusCode::kDeadlineExceeded) << echoed.status();
  EXPECT_NE(echoed.status().message().find("1 attempt(s) of 150 ms"), std::string::npos)
      << echoed.status();
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_LT(elapsed, milliseconds(3000));
  EXPECT_EQ(silent.Attempts().size(), 1u);
}

TEST(TransportTimeout, RetryResendsTheSameRequestAndSucceeds) {
  SilentServer silent;
  silent.AnswerFromAttempt(2);  // the first attempt is swallowed
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> echoed = testing::Echo(**client, "second time lucky", {milliseconds(150), 3});
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "second time lucky");
  const std::vector<uint64_t> attempts = silent.Attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0], attempts[1]) << "a retry must carry the same request id";
}

TEST(TransportTimeout, RetriesStopAtMaxAttempts) {
  SilentServer silent;
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> echoed = testing::Echo(**client, "hello?", {milliseconds(80), 3});
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(echoed.status().message().find("3 attempt(s) of 80 ms"), std::string::npos)
      << echoed.status();
  EXPECT_NE(echoed.status().message().find("echo request"), std::string::npos);
  const std::vector<uint64_t> attempts = silent.Attempts();
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0], attempts[2]);
}

TEST(TransportTimeout, LateReplyIsIgnoredAndTheClientGoesOn) {
  SilentServer silent;
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> first = testing::Echo(**client, "too slow", {milliseconds(50), 1});
  ASSERT_EQ(first.status().code(), StatusCode::kDeadlineExceeded);
  // Now answer the timed-out request, then make sure a fresh call gets its own answer.
  {
    std::lock_guard<std::mutex> lock(silent.mutex);
    ASSERT_EQ(silent.held.size(), 1u);
    silent.held[0].SendAck(99);
    silent.answer_from_attempt = 1;
  }
  StatusOr<std::string> second = testing::Echo(**client, "on time");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "on time");
}

// A job that ended: its servers will never answer. CancelAll ends the calls in flight at
// once with the reason (not after their timeout), and every later call too.
TEST(TransportTimeout, CancelAllEndsOpenAndLaterCallsAtOnceWithTheReason) {
  SilentServer silent;
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::future<StatusOr<IncomingMessage>>> open;
  for (int i = 0; i < 3; ++i) {
    auto request = (*client)->NewRequest();
    request->body().setEcho(testing::AsData("waits"));
    open.push_back((*client)->Call(std::move(request), {std::chrono::seconds(60), 3}));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return silent.Attempts().size() == 3; }, std::chrono::seconds(10)))
      << "the server did not see the calls";
  const auto start = Clock::now();
  (*client)->CancelAll(Cancelled("the scheduler ended the job"));
  for (auto& call : open) {
    ASSERT_EQ(call.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    StatusOr<IncomingMessage> reply = call.get();
    EXPECT_EQ(reply.status().code(), StatusCode::kCancelled);
    EXPECT_EQ(reply.status().message(), "the scheduler ended the job");
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  StatusOr<std::string> later = testing::Echo(**client, "after", {std::chrono::seconds(60), 1});
  EXPECT_EQ(later.status().code(), StatusCode::kCancelled) << later.status();
  EXPECT_EQ(silent.Attempts().size(), 3u) << "a call after CancelAll is not sent";
}

TEST(TransportTimeout, DroppedResponderAnswersWithInternal) {
  RpcServer server{TransportOptions{}};
  server.Handle(proto::Envelope::Body::ECHO, [](IncomingMessage&, Responder) {
    // Returns without answering: the Responder's destructor must answer for it.
  });
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> echoed = testing::Echo(**client, "x");
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.status().code(), StatusCode::kInternal);
  EXPECT_NE(echoed.status().message().find("dropped it without an answer"), std::string::npos)
      << echoed.status();
}

TEST(TransportTimeout, HandlerThatThrowsStillAnswers) {
  RpcServer server{TransportOptions{}};
  server.Handle(proto::Envelope::Body::ECHO, [](IncomingMessage& request, Responder) {
    (void)request;  // a handler bug
    throw std::runtime_error("handler bug");
  });
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> echoed = testing::Echo(**client, "x");
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.status().code(), StatusCode::kInternal);
  // The server is still there.
  StatusOr<std::string> again = testing::Echo(**client, "y");
  EXPECT_EQ(again.status().code(), StatusCode::kInternal);
}

TEST(TransportTimeout, DestroyingTheClientCancelsCallsInFlight) {
  SilentServer silent;
  auto client = RpcClient::Connect(silent.endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  auto request = (*client)->NewRequest();
  request->body().setEcho(testing::AsData("never answered"));
  auto future = (*client)->Call(std::move(request), {milliseconds(0), 1});  // no deadline
  // Wait until the server has it, so the call is truly in flight.
  for (int i = 0; i < 500 && silent.Attempts().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  client->reset();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  StatusOr<IncomingMessage> reply = future.get();
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kCancelled);
}

TEST(TransportTimeout, StopIsPromptWithCallsHeld) {
  auto silent = std::make_unique<SilentServer>();
  auto client = RpcClient::Connect(silent->endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  auto future = (*client)->Call([&] {
    auto r = (*client)->NewRequest();
    r->body().setEcho(testing::AsData("held"));
    return r;
  }(), {milliseconds(300), 1});
  for (int i = 0; i < 500 && silent->Attempts().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  const auto start = Clock::now();
  silent->server.Stop();
  silent.reset();  // drops the held Responders after Stop: their replies go nowhere
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  StatusOr<IncomingMessage> reply = future.get();
  EXPECT_EQ(reply.status().code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace mtps
