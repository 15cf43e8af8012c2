// ps::Client retries driven by the error's kind: a sparse pull or push that a server
// refuses with a retryable error (unavailable for now) is sent again after a backoff, a
// bounded number of times; a permanent error is returned at once, after one send.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

#include "protocol/transport.h"
#include "ps/client.h"

namespace mtps::ps {
namespace {

using Kind = proto::Envelope::Body::Which;
using std::chrono::milliseconds;

constexpr int kDim = 4;

// A server that refuses each sparse request with the next status of a script (OK ends the
// script: from then on it answers), and counts what it was sent.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Status> script)
      : script_(script.begin(), script.end()), rpc_(TransportOptions{.keys = nullptr}) {
    rpc_.Handle(Kind::SPARSE_PULL, [this](IncomingMessage& request, Responder responder) {
      ++pulls_;
      if (Status refusal = Next(); !refusal.ok()) return responder.SendError(refusal);
      const size_t n = request.envelope().getBody().getSparsePull().getKeys().size() / 8;
      auto reply = responder.NewReply();
      auto answer = reply->body().initSparsePullReply();
      answer.setDim(kDim);
      auto values = answer.initValues(n * kDim * sizeof(float));
      std::vector<float> ones(n * kDim, 1.0f);
      std::memcpy(values.begin(), ones.data(), values.size());
      responder.Send(std::move(reply));
    });
    rpc_.Handle(Kind::SPARSE_PUSH, [this](IncomingMessage& request, Responder responder) {
      ++pushes_;
      if (Status refusal = Next(); !refusal.ok()) return responder.SendError(refusal);
      const size_t n = request.envelope().getBody().getSparsePush().getKeys().size() / 8;
      auto reply = responder.NewReply();
      reply->body().initSparsePushReply().setApplied(n);
      responder.Send(std::move(reply));
    });
    StatusOr<int> port = rpc_.Bind("tcp://127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status();
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(port.ok() ? *port : 0);
    EXPECT_TRUE(rpc_.Start().ok());
  }

  const std::string& endpoint() const { return endpoint_; }
  int pulls() const { return pulls_.load(); }
  int pushes() const { return pushes_.load(); }

 private:
  Status Next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (script_.empty()) return Status::OK();
    Status next = script_.front();
    script_.pop_front();
    return next;
  }

  std::mutex mu_;
  std::deque<Status> script_;  // GUARDED_BY(mu_)
  std::atomic<int> pulls_{0};
  std::atomic<int> pushes_{0};
  RpcServer rpc_;
  std::string endpoint_;
};

std::unique_ptr<Client> ConnectTo(const ScriptedServer& server, int error_retries = 3) {
  ClientOptions options;
  options.transport.keys = nullptr;
  options.error_retries = error_retries;
  options.retry_backoff = milliseconds(1);
  options.max_retry_backoff = milliseconds(4);
  auto client = Client::Connect({server.endpoint()}, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

const std::vector<uint64_t> kKeys = {11, 22, 33};

TEST(ClientRetryTest, APullRefusedForNowIsSentAgainUntilItIsServed) {
  ScriptedServer server({Unavailable("shard moving"), Unavailable("shard moving")});
  auto client = ConnectTo(server);
  std::vector<float> rows(kKeys.size() * kDim, 0.0f);
  Status pulled = client->Pull(0, kKeys, kDim, rows.data());
  ASSERT_TRUE(pulled.ok()) << pulled;
  EXPECT_EQ(server.pulls(), 3);
  EXPECT_EQ(rows, std::vector<float>(kKeys.size() * kDim, 1.0f));
}

TEST(ClientRetryTest, APushRefusedForNowIsSentAgain) {
  // A refusal of a retryable kind means nothing was applied, so even a push goes again.
  ScriptedServer server({Unavailable("table being restored")});
  auto client = ConnectTo(server);
  std::vector<float> grads(kKeys.size() * kDim, 0.5f);
  StatusOr<PushResult> pushed = client->Push(0, kKeys, kDim, grads.data());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, kKeys.size());
  EXPECT_EQ(server.pushes(), 2);
}

TEST(ClientRetryTest, APermanentErrorIsReturnedAtOnce) {
  ScriptedServer server({InvalidArgument("table 0 has dim 8"), FailedPrecondition("not owner")});
  auto client = ConnectTo(server);
  std::vector<float> rows(kKeys.size() * kDim);
  Status pulled = client->Pull(0, kKeys, kDim, rows.data());
  EXPECT_EQ(pulled.code(), StatusCode::kInvalidArgument) << pulled;
  EXPECT_EQ(server.pulls(), 1);
  std::vector<float> grads(kKeys.size() * kDim, 0.5f);
  StatusOr<PushResult> pushed = client->Push(0, kKeys, kDim, grads.data());
  EXPECT_EQ(pushed.status().code(), StatusCode::kFailedPrecondition) << pushed.status();
  EXPECT_EQ(server.pushes(), 1);
}

TEST(ClientRetryTest, RetriesAreBoundedAndTheLastErrorIsReturned) {
  ScriptedServer server(std::vector<Status>(10, Unavailable("still restoring")));
  auto client = ConnectTo(server, /*error_retries=*/2);
  std::vector<float> rows(kKeys.size() * kDim);
  Status pulled = client->Pull(0, kKeys, kDim, rows.data());
  EXPECT_EQ(pulled.code(), StatusCode::kUnavailable) << pulled;
  EXPECT_NE(pulled.message().find("still restoring"), std::string::npos) << pulled;
  EXPECT_EQ(server.pulls(), 3);  // the first send and two retries
}

TEST(ClientRetryTest, NoRetriesWhenTheClientAsksForNone) {
  ScriptedServer server({Unavailable("shard moving")});
  auto client = ConnectTo(server, /*error_retries=*/0);
  std::vector<float> grads(kKeys.size() * kDim, 0.5f);
  StatusOr<PushResult> pushed = client->Push(0, kKeys, kDim, grads.data());
  EXPECT_EQ(pushed.status().code(), StatusCode::kUnavailable) << pushed.status();
  EXPECT_EQ(server.pushes(), 1);
}

TEST(ClientRetryTest, ANegativeRetryCountIsRefused) {
  ClientOptions options;
  options.error_retries = -1;
  auto client = Client::Connect({"tcp://127.0.0.1:1"}, options);
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument) << client.status();
}

}  // namespace
}  // namespace mtps::ps
