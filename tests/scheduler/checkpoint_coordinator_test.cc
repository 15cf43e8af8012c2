// Tests of CheckpointCoordinator against in-process servers over loopback: the manifest
// appears only after every ack, failures leave no manifest, old checkpoints are removed.
#include "scheduler/checkpoint_coordinator.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/checkpoint_manifest.h"
#include "tests/common/wait_for.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::TempDir;
using ::testing::HasSubstr;
using Kind = proto::Envelope::Body;

// A stand-in for a parameter server's checkpoint handlers: writes one real file per
// checkpoint and acknowledges it, at once or when the test says so.
class FakeCheckpointServer {
 public:
  FakeCheckpointServer(int rank, bool hold_ack = false, Status fail = Status::OK())
      : rank_(rank), hold_ack_(hold_ack), fail_(std::move(fail)), rpc_(TransportOptions{}, proto::Role::SERVER, rank) {
    rpc_.Handle(Kind::CHECKPOINT_BEGIN, [this](IncomingMessage& m, Responder r) { Begin(m, std::move(r)); });
    rpc_.Handle(Kind::CHECKPOINT_COMMIT, [this](IncomingMessage& m, Responder r) {
      std::lock_guard<std::mutex> lock(mutex_);
      committed_.push_back(m.envelope().getBody().getCheckpointCommit().getCheckpointId());
      r.SendAck();
    });
    port_ = *rpc_.Bind("tcp://127.0.0.1:0");
    EXPECT_TRUE(rpc_.Start().ok());
    client_ = std::move(*RpcClient::Connect("tcp://127.0.0.1:" + std::to_string(port_),
                                            proto::Role::SCHEDULER, 0));
  }

  RpcClient* client() { return client_.get(); }
  int begun() const { return begun_; }
  // From now on every full_every-th checkpoint's file is whole, the others increments over
  // the checkpoint before (as a parameter server with checkpoint.full_every does).
  void set_full_every(uint64_t n) { full_every_ = n; }
  std::vector<uint64_t> committed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return committed_;
  }
  void ReleaseAck() {
    std::lock_guard<std::mutex> lock(mutex_);
    held_->Send(std::move(held_reply_));
    held_.reset();
  }

 private:
  void Begin(IncomingMessage& m, Responder r) {
    auto begin = m.envelope().getBody().getCheckpointBegin();
    if (!fail_.ok()) {
      ++begun_;
      return r.SendError(fail_);
    }
    const std::string path = std::string(begin.getDir()) + "/server-" + std::to_string(rank_) + ".ckpt";
    std::ofstream(path) << "rows of server " << rank_;
    auto reply = r.NewReply();
    auto ack = reply->body().initCheckpointAck();
    ack.setCheckpointId(begin.getCheckpointId());
    ack.setServerRank(rank_);
    auto file = ack.initFiles(1)[0];
    file.setPath(path);
    file.setBytes(std::filesystem::file_size(path));
    file.setChecksum(1000 + rank_);
    const uint64_t id = begin.getCheckpointId();
    if ((id - 1) % full_every_ != 0) file.setBaseId(id - 1);
    if (hold_ack_) {
      std::lock_guard<std::mutex> lock(mutex_);
      held_.emplace(std::move(r));
      held_reply_ = std::move(reply);
    } else {
      r.Send(std::move(reply));
    }
    ++begun_;
  }

  const int rank_;
  const bool hold_ack_;
  const Status fail_;
  RpcServer rpc_;
  int port_ = 0;
  std::unique_ptr<RpcClient> client_;
  std::atomic<int> begun_{0};
  uint64_t full_every_ = 1;
  std::vector<uint64_t> committed_;
  std::mutex mutex_;
  std::optional<Responder> held_;
  std::unique_ptr<OutgoingMessage> held_reply_;
};


TEST(CheckpointCoordinatorTest, ManifestIsWrittenOnlyAfterEveryAck) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer fast(0), slow(1, /*hold_ack=*/true);
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path()});
  const std::string dir = CheckpointDir(root.path(), 7);
  auto run = std::async(std::launch::async, [&] {
    return coordinator.Run({fast.client(), slow.client()}, 7, 1234);
  });
  ASSERT_TRUE(mtps::testing::WaitFor([&] { return fast.begun() == 1 && slow.begun() == 1; },
                                     std::chrono::seconds(5)));
  // Server 0 has acked, server 1 has written its file but not acked: no manifest yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(dir)));
  EXPECT_TRUE(fast.committed().empty());
  slow.ReleaseAck();
  StatusOr<std::string> result = run.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, dir);
  StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(ManifestPath(dir));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->id, 7u);
  EXPECT_EQ(manifest->step, 1234u);
  ASSERT_EQ(manifest->files.size(), 2u);
  EXPECT_EQ(manifest->files[0].path, dir + "/server-0.ckpt");
  EXPECT_EQ(manifest->files[1].checksum, 1001u);
  EXPECT_EQ(manifest->files[1].bytes, std::filesystem::file_size(dir + "/server-1.ckpt"));
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(dir) + ".tmp"));
  EXPECT_THAT(fast.committed(), ::testing::ElementsAre(7u));
  EXPECT_THAT(slow.committed(), ::testing::ElementsAre(7u));
  EXPECT_EQ(NextCheckpointId(root.path()), 8u);
}

TEST(CheckpointCoordinatorTest, AFailedServerLeavesNoManifestAndNoCommit) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer good(0), bad(1, false, ResourceExhausted("disk full writing table 'user'"));
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path()});
  StatusOr<std::string> result = coordinator.Run({good.client(), bad.client()}, 1, 10);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("no manifest written"));
  EXPECT_THAT(result.status().message(), HasSubstr("server 1"));
  EXPECT_THAT(result.status().message(), HasSubstr("disk full writing table 'user'"));
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(CheckpointDir(root.path(), 1))));
  EXPECT_TRUE(good.committed().empty());
}

TEST(CheckpointCoordinatorTest, AnAckFromTheWrongRankIsRefused) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer a(0), b(0);  // the second claims rank 0 too
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path()});
  StatusOr<std::string> result = coordinator.Run({a.client(), b.client()}, 1, 10);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("server 1"));
  EXPECT_THAT(result.status().message(), HasSubstr("acknowledged checkpoint 1 as server 0"));
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(CheckpointDir(root.path(), 1))));
}

TEST(CheckpointCoordinatorTest, KeepsOnlyTheNewestWholeCheckpoints) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer server(0);
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path(), .keep = 2});
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(coordinator.Run({server.client()}, id, id * 100).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(CheckpointDir(root.path(), 1)));
  EXPECT_TRUE(std::filesystem::exists(ManifestPath(CheckpointDir(root.path(), 2))));
  EXPECT_TRUE(std::filesystem::exists(ManifestPath(CheckpointDir(root.path(), 3))));
  EXPECT_EQ(NextCheckpointId(root.path()), 4u);
}

TEST(CheckpointCoordinatorTest, RetentionKeepsWhatTheKeptIncrementsBuildOn) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer server(0);
  server.set_full_every(3);  // 1 whole, 2 and 3 increments, 4 whole, 5 an increment
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path(), .keep = 2});
  auto exists = [&](uint64_t id) { return std::filesystem::exists(CheckpointDir(root.path(), id)); };
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(coordinator.Run({server.client()}, id, id).ok());
  StatusOr<CheckpointManifest> third = ReadCheckpointManifest(ManifestPath(CheckpointDir(root.path(), 3)));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->files.at(0).base_id, 2u) << "the ack's base reaches the manifest";
  EXPECT_TRUE(exists(1)) << "keep = 2 holds 2 and 3, and 3 needs 2, which needs 1";
  ASSERT_TRUE(coordinator.Run({server.client()}, 4, 4).ok());
  EXPECT_TRUE(exists(1) && exists(2) && exists(3)) << "3 is kept, so its chain stays";
  ASSERT_TRUE(coordinator.Run({server.client()}, 5, 5).ok());
  EXPECT_FALSE(exists(1) || exists(2) || exists(3)) << "4 is whole: nothing kept needs them";
  EXPECT_TRUE(exists(4) && exists(5));
}

// The best epoch's checkpoint outlives retention with the chain it needs, and only while it
// is the one kept: a newer best lets it go.
TEST(CheckpointCoordinatorTest, TheCheckpointKeptAlwaysSurvivesRetentionWithItsChain) {
  TempDir root;
  auto fs = NewPosixFileSystem();
  FakeCheckpointServer server(0);
  server.set_full_every(2);  // odd ids whole, even ids increments over the one before
  CheckpointCoordinator coordinator(fs.get(), {.root = root.path(), .keep = 1});
  auto exists = [&](uint64_t id) { return std::filesystem::exists(CheckpointDir(root.path(), id)); };
  for (uint64_t id = 1; id <= 2; ++id) ASSERT_TRUE(coordinator.Run({server.client()}, id, id).ok());
  coordinator.KeepAlways(2);
  for (uint64_t id = 3; id <= 6; ++id) ASSERT_TRUE(coordinator.Run({server.client()}, id, id).ok());
  EXPECT_TRUE(exists(1) && exists(2)) << "2 is kept always and builds on 1";
  EXPECT_FALSE(exists(3) || exists(4)) << "neither kept nor needed";
  EXPECT_TRUE(exists(5) && exists(6)) << "6 is the newest and builds on 5";
  coordinator.KeepAlways(5);
  ASSERT_TRUE(coordinator.Run({server.client()}, 7, 7).ok());
  EXPECT_FALSE(exists(1) || exists(2) || exists(6));
  EXPECT_TRUE(exists(5) && exists(7));
}

}  // namespace
}  // namespace mtps::scheduler
