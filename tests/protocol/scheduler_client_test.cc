// Tests of SchedulerClient against a scripted scheduler (an RpcServer in the test): with a
// ManualClock in its Env, a client whose scheduler stops answering gives up after exactly
// scheduler_timeout of that clock, without a test that waits the timeout out.
#include "protocol/scheduler_client.h"

#include <atomic>
#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/clock.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Kind = proto::Envelope::Body;

constexpr uint64_t kJob = 0x5eedull;

// Registers every node as rank 0 and answers heartbeats until told to refuse them.
class ScriptedScheduler {
 public:
  ScriptedScheduler() : rpc_(TransportOptions{.handler_threads = 1, .job_id = kJob}, proto::Role::SCHEDULER) {
    rpc_.Handle(Kind::REGISTER, [](IncomingMessage&, Responder responder) {
      auto reply = responder.NewReply();
      auto answer = reply->body().initRegisterReply();
      answer.setRank(0);
      answer.setGeneration(1);
      answer.setIncarnation(1);
      responder.Send(std::move(reply));
    });
    rpc_.Handle(Kind::HEARTBEAT, [this](IncomingMessage&, Responder responder) {
      if (!answering_.load()) return responder.SendError(Unavailable("the test's scheduler is down"));
      auto reply = responder.NewReply();
      auto answer = reply->body().initHeartbeatReply();
      answer.setIncarnation(1);
      const int failure = failure_.load();
      answer.setJobState(failure == kRunning ? proto::NodeState::RUNNING : proto::NodeState::FAILED);
      if (failure != kRunning) {
        answer.setReason("a server was lost");
        answer.setRetryable(failure == kRetryableFailure);
      }
      responder.Send(std::move(reply));
    });
    endpoint_ = testing::StartOnLoopback(rpc_);
  }
  void set_answering(bool answering) { answering_.store(answering); }
  // What the heartbeat answers say of the job from now on.
  static constexpr int kRunning = 0, kRetryableFailure = 1, kPermanentFailure = 2;
  void set_job(int failure) { failure_.store(failure); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  RpcServer rpc_;
  std::string endpoint_;
  std::atomic<bool> answering_{true};
  std::atomic<int> failure_{kRunning};
};

class SchedulerClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<SchedulerClient> Registered() {
    SchedulerClientOptions o;
    o.scheduler = scheduler_.endpoint();
    o.role = proto::Role::WORKER;
    o.spec_hash = kJob;
    o.heartbeat_interval = milliseconds(5);
    o.scheduler_timeout = seconds(30);  // of clock_: never reached in real time
    o.env = Env{.clock = &clock_};
    auto client = SchedulerClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    StatusOr<ClusterInfo> info = (*client)->Register();
    EXPECT_TRUE(info.ok()) << info.status();
    return std::move(*client);
  }
  // Returns once two more heartbeat exchanges have settled: the second was sent after now.
  void NextHeartbeats(SchedulerClient& client) {
    ASSERT_TRUE(client.WaitForHeartbeats(client.heartbeats() + 2, seconds(10)));
  }

  ManualClock clock_;
  ScriptedScheduler scheduler_;
};

TEST_F(SchedulerClientTest, ASilentSchedulerIsLostAfterTheTimeoutOfTheClientsClock) {
  std::unique_ptr<SchedulerClient> client = Registered();
  NextHeartbeats(*client);
  scheduler_.set_answering(false);
  NextHeartbeats(*client);
  clock_.Advance(seconds(29));
  NextHeartbeats(*client);
  EXPECT_FALSE(client->shutdown_notice().has_value()) << "29 s without an answer is not lost";

  clock_.Advance(seconds(2));
  std::optional<ShutdownNotice> notice = client->WaitForShutdown(seconds(10));
  ASSERT_TRUE(notice.has_value());
  EXPECT_TRUE(notice->failed);
  EXPECT_TRUE(notice->retryable) << "a restart may find the scheduler again";
  EXPECT_THAT(notice->reason, HasSubstr("lost the scheduler at " + scheduler_.endpoint()));
  EXPECT_THAT(notice->reason, HasSubstr("no heartbeat answer for 31 s"));
  EXPECT_THAT(notice->reason, HasSubstr("the test's scheduler is down"));
}

TEST_F(SchedulerClientTest, AnAnswerStartsTheTimeoutAgain) {
  std::unique_ptr<SchedulerClient> client = Registered();
  scheduler_.set_answering(false);
  clock_.Advance(seconds(20));
  NextHeartbeats(*client);
  scheduler_.set_answering(true);  // back before the timeout: the silence is forgotten
  NextHeartbeats(*client);
  scheduler_.set_answering(false);
  clock_.Advance(seconds(20));  // 40 s since registering, 20 s since the last answer
  NextHeartbeats(*client);
  EXPECT_FALSE(client->shutdown_notice().has_value());
  clock_.Advance(seconds(11));
  EXPECT_TRUE(client->WaitForShutdown(seconds(10)).has_value());
}

// A node that learns of the failure from a heartbeat answer (it missed the broadcast)
// exits as the broadcast would have told it: retryable or not.
TEST_F(SchedulerClientTest, AFailedJobInAHeartbeatAnswerKeepsItsRetryableKind) {
  for (int failure : {ScriptedScheduler::kRetryableFailure, ScriptedScheduler::kPermanentFailure}) {
    scheduler_.set_job(ScriptedScheduler::kRunning);
    std::unique_ptr<SchedulerClient> client = Registered();
    NextHeartbeats(*client);
    EXPECT_FALSE(client->shutdown_notice().has_value());
    scheduler_.set_job(failure);
    std::optional<ShutdownNotice> notice = client->WaitForShutdown(seconds(10));
    ASSERT_TRUE(notice.has_value());
    EXPECT_TRUE(notice->failed);
    EXPECT_EQ(notice->retryable, failure == ScriptedScheduler::kRetryableFailure);
    EXPECT_EQ(notice->Outcome().code(), failure == ScriptedScheduler::kRetryableFailure
                                            ? StatusCode::kUnavailable
                                            : StatusCode::kFailedPrecondition);
    EXPECT_THAT(notice->reason, HasSubstr("a server was lost"));
  }
}

}  // namespace
}  // namespace mtps::scheduler
