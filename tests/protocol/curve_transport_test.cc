// CURVE on the transport: keys written by mtps-keys load back (and bad ones are refused);
// an RpcServer with the job's keys serves the job's nodes and names them, refuses at the
// handshake a peer without keys or with another job's keys (counted), and refuses a request
// kind its sender's key may not send (a worker's shutdown, a worker claiming to be the
// scheduler), counted, while it keeps serving.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "protocol/authority.h"
#include "protocol/curve_keys.h"
#include "tests/common/test_keys.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

using namespace std::chrono_literals;
using Kind = proto::Envelope::Body;

TEST(CurveKeys, MtpsKeysDirectoryLoadsBackForEveryNode) {
  ASSERT_TRUE(CurveSupported()) << "libzmq without CURVE";
  const std::string dir = ::testing::TempDir() + "/curve_keys_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteJobKeys(dir, 2, 3, 1).ok());
  for (std::string name : {"scheduler", "server-0", "server-1", "worker-2", "client-0"}) {
    StatusOr<std::shared_ptr<const JobKeys>> keys = JobKeys::Load(dir, name);
    ASSERT_TRUE(keys.ok()) << name << ": " << keys.status();
    EXPECT_EQ((*keys)->self().name, name);
    EXPECT_EQ((*keys)->holders().size(), 7u);
    EXPECT_NE((*keys)->FindByPublicKey((*keys)->own_keys().public_key), nullptr);
  }
  EXPECT_EQ(JobKeys::Load(dir, "worker-0").value()->self().role, proto::Role::WORKER);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/worker-0.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "a secret key readable by others";

  // Never overwritten: a second run would lock every running node out.
  EXPECT_EQ(WriteJobKeys(dir, 1, 1, 0).code(), StatusCode::kAlreadyExists);
  // A name that is not in the allow-list, and path tricks in a name.
  EXPECT_EQ(JobKeys::Load(dir, "worker-9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(JobKeys::Load(dir, "../scheduler").status().code(), StatusCode::kInvalidArgument);
  // A key file whose secret is another node's: refused, naming the file.
  std::filesystem::copy_file(dir + "/worker-1.key", dir + "/worker-0.key",
                             std::filesystem::copy_options::overwrite_existing);
  Status swapped = JobKeys::Load(dir, "worker-0").status();
  EXPECT_EQ(swapped.code(), StatusCode::kInvalidArgument) << swapped;
  EXPECT_NE(swapped.message().find("worker-0"), std::string::npos) << swapped;
  std::filesystem::remove_all(dir);
}

class CurveTransport : public ::testing::Test {
 protected:
  CurveTransport() : job_(1, 2), other_job_(1, 2) {}

  void SetUp() override {
    TransportOptions options;
    options.keys = job_.For("server-0");
    server_ = std::make_unique<RpcServer>(options, proto::Role::SERVER, 0);
    server_->Handle(Kind::ECHO, [this](IncomingMessage& request, Responder responder) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        last_peer_ = request.peer();
      }
      auto reply = responder.NewReply();
      reply->body().setEcho(request.envelope().getBody().getEcho());
      responder.Send(std::move(reply));
    });
    server_->Handle(Kind::SHUTDOWN, [this](IncomingMessage&, Responder responder) {
      ++shutdowns_;
      responder.SendAck();
    });
    endpoint_ = testing::StartOnLoopback(*server_);
  }

  std::unique_ptr<RpcClient> Connect(std::shared_ptr<const JobKeys> keys,
                                     proto::Role role = proto::Role::WORKER) {
    TransportOptions options;
    options.keys = std::move(keys);
    auto client = RpcClient::Connect(endpoint_, role, 0, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  Status Shutdown(RpcClient& client, std::chrono::milliseconds timeout = 5000ms) {
    auto request = client.NewRequest();
    request->body().initShutdown().setReason("test");
    StatusOr<IncomingMessage> reply = client.Call(std::move(request), {timeout, 1}).get();
    return reply.ok() ? ReplyStatus(*reply) : reply.status();
  }

  std::string last_peer() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_peer_;
  }

  testing::TestJobKeys job_;
  testing::TestJobKeys other_job_;
  std::unique_ptr<RpcServer> server_;
  std::string endpoint_;
  std::mutex mutex_;
  std::string last_peer_;
  std::atomic<int> shutdowns_{0};
};

TEST_F(CurveTransport, AJobNodeIsServedAndNamedByItsKey) {
  auto worker = Connect(job_.For("worker-1"));
  StatusOr<std::string> echoed = testing::Echo(*worker, "hello");
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "hello");
  EXPECT_EQ(last_peer(), "worker-1");
  EXPECT_EQ(server_->counters().handshakes_refused, 0u);
}

TEST_F(CurveTransport, APeerWithoutKeysOrWithAnotherJobsKeysIsRefusedAtTheHandshake) {
  auto no_keys = Connect(nullptr);
  auto stranger = Connect(other_job_.For("worker-0"));
  // Another job's scheduler key: a real key, just not this job's.
  auto other_scheduler = Connect(other_job_.For("scheduler"), proto::Role::SCHEDULER);
  for (RpcClient* c : {no_keys.get(), stranger.get(), other_scheduler.get()}) {
    StatusOr<std::string> echoed = testing::Echo(*c, "let me in", {300ms, 1});
    EXPECT_EQ(echoed.status().code(), StatusCode::kDeadlineExceeded) << echoed.status();
  }
  EXPECT_EQ(Shutdown(*other_scheduler, 300ms).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(shutdowns_.load(), 0);
  // Every refused connection is counted (libzmq retries, so at least one each).
  for (int i = 0; i < 200 && server_->counters().handshakes_refused < 3; ++i) {
    std::this_thread::sleep_for(10ms);  // polling a counter that another thread bumps
  }
  EXPECT_GE(server_->counters().handshakes_refused, 3u);
  EXPECT_EQ(server_->counters().requests, 0u) << "no stranger's request reached a handler";
  // The job's own nodes are still served.
  auto worker = Connect(job_.For("worker-0"));
  EXPECT_TRUE(testing::Echo(*worker, "still here").ok());
}

TEST_F(CurveTransport, OnlyTheSchedulerKeyGivesOrders) {
  auto worker = Connect(job_.For("worker-0"));
  Status refused = Shutdown(*worker);
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("may not send shutdown"), std::string::npos) << refused;

  // A worker's key claiming the scheduler's role in the envelope: a forged identity.
  auto forger = Connect(job_.For("worker-1"), proto::Role::SCHEDULER);
  Status forged = Shutdown(*forger);
  EXPECT_EQ(forged.code(), StatusCode::kPermissionDenied) << forged;
  EXPECT_NE(forged.message().find("claiming to be a scheduler"), std::string::npos) << forged;
  EXPECT_EQ(shutdowns_.load(), 0);
  EXPECT_EQ(server_->counters().unauthorized, 2u);

  auto scheduler = Connect(job_.For("scheduler"), proto::Role::SCHEDULER);
  EXPECT_TRUE(Shutdown(*scheduler).ok());
  EXPECT_EQ(shutdowns_.load(), 1);
}

TEST(Authority, EachKindHasItsSenders) {
  testing::TestJobKeys job(1, 1);
  auto keys = job.For("scheduler");
  auto check = [&](const std::string& who, proto::Role claimed,
                   void (*fill)(Kind::Builder)) -> StatusCode {
    auto message = NewEnvelope({.role = claimed});
    fill(message->body());
    kj::Array<capnp::word> flat = capnp::messageToFlatArray(message->builder());
    capnp::FlatArrayMessageReader reader(flat);
    return AuthorizeRequest(*keys->FindByName(who), reader.getRoot<proto::Envelope>()).code();
  };
  using R = proto::Role;
  const auto ok = StatusCode::kOk, no = StatusCode::kPermissionDenied;
  auto progress = [](Kind::Builder b) { b.initProgress().setPhase("done"); };
  auto pull = [](Kind::Builder b) { b.initSparsePull(); };
  auto begin = [](Kind::Builder b) { b.initCheckpointBegin(); };
  auto reg_worker = [](Kind::Builder b) { b.initRegister().setRole(proto::Role::WORKER); };
  auto reg_server = [](Kind::Builder b) { b.initRegister().setRole(proto::Role::SERVER); };
  auto stats = [](Kind::Builder b) { b.initStats(); };
  auto ack = [](Kind::Builder b) { b.initAck(); };
  EXPECT_EQ(check("worker-0", R::WORKER, progress), ok);
  EXPECT_EQ(check("server-0", R::SERVER, progress), no);
  EXPECT_EQ(check("worker-0", R::WORKER, pull), ok);
  EXPECT_EQ(check("server-0", R::SERVER, pull), no);
  EXPECT_EQ(check("client-0", R::CLIENT, pull), no);
  EXPECT_EQ(check("client-0", R::CLIENT, stats), ok);
  EXPECT_EQ(check("scheduler", R::SCHEDULER, begin), ok);
  EXPECT_EQ(check("server-0", R::SERVER, begin), no);
  EXPECT_EQ(check("worker-0", R::SCHEDULER, begin), no);
  EXPECT_EQ(check("worker-0", R::WORKER, reg_worker), ok);
  EXPECT_EQ(check("worker-0", R::WORKER, reg_server), no);
  EXPECT_EQ(check("scheduler", R::SCHEDULER, ack), no);
}

}  // namespace
}  // namespace mtps
