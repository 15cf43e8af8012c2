// Restore checks every file against the manifest's size and CRC32C: a file copied in from
// another checkpoint or damaged on disk is refused, and the previous whole checkpoint is used.
// With checkpoint.full_every a server writes increments over its last committed checkpoint,
// restore goes through the chain, and a damaged increment falls back to the last whole state.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/checkpoint_manifest.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using testing::CallRaw;
using testing::InProcessCluster;
using testing::kUserDim;
using testing::kUserTable;
using testing::TestJob;
using Body = proto::Envelope::Body::Builder;

class CheckpointRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/ps_restore_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    keys_ = testing::SomeKeys(40);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(root_);
  }

  // Pushes `grad` to every key of the user table, then writes checkpoint `id` with the
  // scheduler's cluster manifest (as CheckpointCoordinator does) and commits it, unless
  // `commit` is false (an abandoned checkpoint: neither manifest nor commit).
  void PushAndCheckpoint(InProcessCluster& cluster, uint64_t id, float grad, bool commit = true) {
    auto& server = *cluster.at(0).server;
    const std::vector<float> grads(keys_.size() * kUserDim, grad);
    ASSERT_TRUE(server.tables().Push(kUserTable, keys_.data(), grads.data(), keys_.size(), id).ok());
    auto raw = RpcClient::Connect(cluster.at(0).endpoint, proto::Role::SCHEDULER, -1);
    ASSERT_TRUE(raw.ok());
    const std::string dir = Dir(id);
    StatusOr<IncomingMessage> begun = CallRaw(**raw, [&](Body b) {
      auto begin = b.initCheckpointBegin();
      begin.setCheckpointId(id);
      begin.setDir(dir);
      begin.setStep(100 * id);
    });
    ASSERT_TRUE(begun.ok()) << begun.status();
    CheckpointManifest manifest{id, 100 * id, {}};
    for (auto f : begun->envelope().getBody().getCheckpointAck().getFiles())
      manifest.files.push_back({f.getPath(), f.getBytes(), f.getChecksum(), f.getBaseId()});
    if (!commit) return;
    auto fs = NewPosixFileSystem();
    ASSERT_TRUE(WriteCheckpointManifest(*fs, ManifestPath(dir), manifest).ok());
    ASSERT_TRUE(CallRaw(**raw, [&](Body b) { b.initCheckpointCommit().setCheckpointId(id); }).ok());
  }

  std::vector<float> UserRows(InProcessCluster& cluster) {
    std::vector<float> rows(keys_.size() * kUserDim);
    EXPECT_TRUE(cluster.at(0).server->tables()
                    .Pull(kUserTable, keys_.data(), keys_.size(), rows.data(), 1000, false)
                    .ok());
    return rows;
  }

  // Where the server writes checkpoint `id`: under its own root, whatever begin.dir says.
  std::string Dir(uint64_t id) const { return CheckpointDir(root_, id); }
  std::string UserFile(uint64_t id) const { return TableCheckpointPath(Dir(id), 0, "user"); }
  // What checkpoint `id`'s manifest says the user table's file builds on (0: whole).
  uint64_t UserBase(uint64_t id) const {
    StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(ManifestPath(Dir(id)));
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    if (!manifest.ok()) return ~uint64_t{0};
    for (const CheckpointFileInfo& f : manifest->files) {
      if (f.path == UserFile(id)) return f.base_id;
      if (f.path.find(".dense.") != std::string::npos) {
        EXPECT_EQ(f.base_id, 0u) << "dense blocks are written whole: " << f.path;
      }
    }
    ADD_FAILURE() << "no user file in checkpoint " << id;
    return ~uint64_t{0};
  }
  static JobSpec IncrementalJob(int full_every) {
    return TestJob(std::string(testing::kTestJob) + "checkpoint: {full_every: " +
                   std::to_string(full_every) + "}\n");
  }
  // Flips one byte in the middle of `path`.
  static void FlipByte(const std::string& path) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto middle = static_cast<std::streamoff>(f.tellg()) / 2;
    char c = 0;
    f.seekg(middle);
    f.get(c);
    f.seekp(middle);
    f.put(static_cast<char>(c ^ 0x5a));
  }

  std::string root_;
  std::vector<uint64_t> keys_;
};

TEST_F(CheckpointRestoreTest, ATableFileCopiedInFromAnotherCheckpointIsRefused) {
  const JobSpec job = TestJob();
  std::vector<float> first, second;
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    PushAndCheckpoint(cluster, 1, 0.5f);
    first = UserRows(cluster);
    PushAndCheckpoint(cluster, 2, 0.25f);
    second = UserRows(cluster);
  }
  ASSERT_NE(first, second);
  // The newest checkpoint's user table replaced by the older one's: a valid file, but not
  // the one its manifest lists.
  std::filesystem::copy_file(UserFile(1), UserFile(2),
                             std::filesystem::copy_options::overwrite_existing);
  Status verified = VerifyCheckpointFile(*NewPosixFileSystem(),
                                         *ReadCheckpointManifest(ManifestPath(Dir(2))), UserFile(2));
  EXPECT_EQ(verified.code(), StatusCode::kDataLoss) << verified;
  EXPECT_NE(verified.message().find("table-user"), std::string::npos) << verified;

  // Restore refuses checkpoint 2 and falls back to checkpoint 1, whole.
  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  CheckpointManifest restored;
  ASSERT_TRUE(cluster.at(0).server->Restore(root_, &restored).ok());
  EXPECT_EQ(restored.id, 1u);
  EXPECT_EQ(restored.step, 100u);
  EXPECT_EQ(UserRows(cluster), first);
}

TEST_F(CheckpointRestoreTest, ADamagedNewestCheckpointFallsBackToThePreviousWholeOne) {
  const JobSpec job = TestJob();
  std::vector<float> first;
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    PushAndCheckpoint(cluster, 1, 0.5f);
    first = UserRows(cluster);
    PushAndCheckpoint(cluster, 2, 0.25f);
  }
  {  // One byte flipped in the middle of the newest dense file.
    const std::string dense = DenseCheckpointPath(Dir(2), 0);
    std::fstream f(dense, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    f.seekp(size / 2);
    char c = 0;
    f.seekg(size / 2);
    f.get(c);
    f.seekp(size / 2);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  CheckpointManifest restored;
  ASSERT_TRUE(cluster.at(0).server->Restore(root_, &restored).ok());
  EXPECT_EQ(restored.id, 1u);
  EXPECT_EQ(UserRows(cluster), first);
}

TEST_F(CheckpointRestoreTest, EveryCheckpointDamagedIsDataLossAndChangesNothing) {
  const JobSpec job = TestJob();
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    PushAndCheckpoint(cluster, 1, 0.5f);
  }
  std::filesystem::resize_file(UserFile(1), std::filesystem::file_size(UserFile(1)) - 3);
  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  Status restored = cluster.at(0).server->Restore(root_);
  EXPECT_EQ(restored.code(), StatusCode::kDataLoss) << restored;
  EXPECT_NE(restored.message().find("bytes"), std::string::npos) << restored;
  EXPECT_EQ(cluster.at(0).server->tables().Counters(kUserTable)->rows, 0u);
}

TEST_F(CheckpointRestoreTest, AFileMissingFromTheManifestIsRefused) {
  const JobSpec job = TestJob();
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    PushAndCheckpoint(cluster, 1, 0.5f);
  }
  auto fs = NewPosixFileSystem();
  StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(ManifestPath(Dir(1)));
  ASSERT_TRUE(manifest.ok());
  manifest->files.erase(manifest->files.begin());
  ASSERT_TRUE(WriteCheckpointManifest(*fs, ManifestPath(Dir(1)), *manifest).ok());
  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  Status restored = cluster.at(0).server->Restore(root_);
  EXPECT_EQ(restored.code(), StatusCode::kDataLoss) << restored;
  EXPECT_NE(restored.message().find("not listed"), std::string::npos) << restored;
}

TEST_F(CheckpointRestoreTest, IncrementsBuildOnTheLastCheckpointAndRestoreThroughTheChain) {
  const JobSpec job = IncrementalJob(3);
  std::vector<std::vector<float>> state(6);
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    for (uint64_t id = 1; id <= 5; ++id) {
      PushAndCheckpoint(cluster, id, 0.125f * static_cast<float>(id));
      state[id] = UserRows(cluster);
    }
  }
  // Every third is whole: 1 whole, 2 and 3 increments, 4 whole, 5 an increment over 4.
  EXPECT_EQ(UserBase(1), 0u);
  EXPECT_EQ(UserBase(2), 1u);
  EXPECT_EQ(UserBase(3), 2u);
  EXPECT_EQ(UserBase(4), 0u);
  EXPECT_EQ(UserBase(5), 4u);

  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  CheckpointManifest restored;
  ASSERT_TRUE(cluster.at(0).server->Restore(root_, &restored).ok());
  EXPECT_EQ(restored.id, 5u);
  EXPECT_EQ(UserRows(cluster), state[5]);

  // Without checkpoints 4 and 5, checkpoint 3 is restored through 1 and 2.
  std::filesystem::remove_all(Dir(5));
  std::filesystem::remove_all(Dir(4));
  InProcessCluster again(job, 1, 2, {.checkpoint_root = root_});
  ASSERT_TRUE(again.at(0).server->Restore(root_, &restored).ok());
  EXPECT_EQ(restored.id, 3u);
  EXPECT_EQ(UserRows(again), state[3]);
  StatusOr<std::string> newest = FindNewestCheckpoint(root_, 0);
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(*newest, Dir(3));
  // The whole file gone: no checkpoint of that chain can be restored, none is "newest".
  std::filesystem::remove_all(Dir(1));
  EXPECT_EQ(FindNewestCheckpoint(root_, 0).status().code(), StatusCode::kNotFound);
  InProcessCluster none(job, 1, 2, {.checkpoint_root = root_});
  Status broken = none.at(0).server->Restore(root_);
  EXPECT_EQ(broken.code(), StatusCode::kDataLoss) << broken;
  EXPECT_NE(broken.message().find("builds on checkpoint 1"), std::string::npos) << broken;
}

TEST_F(CheckpointRestoreTest, ACheckpointNotCommittedIsNeverABaseTheNextOneIsWhole) {
  const JobSpec job = IncrementalJob(10);
  InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
  PushAndCheckpoint(cluster, 1, 0.5f);
  PushAndCheckpoint(cluster, 2, 0.25f, /*commit=*/false);  // abandoned: no manifest
  PushAndCheckpoint(cluster, 3, 0.125f);
  PushAndCheckpoint(cluster, 4, 0.0625f);
  EXPECT_EQ(UserBase(1), 0u);
  EXPECT_EQ(UserBase(3), 0u) << "the rows changed before 2 are in no committed checkpoint";
  EXPECT_EQ(UserBase(4), 3u);
}

TEST_F(CheckpointRestoreTest, ACorruptIncrementFallsBackToTheLastWholeState) {
  const JobSpec job = IncrementalJob(4);
  std::vector<std::vector<float>> state(4);
  const std::string mine = root_;
  root_ = mine + "-other";  // another run's chain, for a foreign increment
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    for (uint64_t id = 1; id <= 3; ++id) PushAndCheckpoint(cluster, id, -0.5f);
  }
  const std::string foreign = UserFile(3);
  root_ = mine;
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    for (uint64_t id = 1; id <= 3; ++id) {
      PushAndCheckpoint(cluster, id, 0.25f * static_cast<float>(id));
      state[id] = UserRows(cluster);
    }
  }
  ASSERT_EQ(UserBase(3), 2u);
  ASSERT_EQ(UserBase(2), 1u);
  for (uint64_t id : {2, 3}) std::filesystem::copy_file(UserFile(id), UserFile(id) + ".good");
  auto restore = [&](uint64_t want_id, const std::string& why) {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root_});
    CheckpointManifest restored;
    Status s = cluster.at(0).server->Restore(root_, &restored);
    ASSERT_TRUE(s.ok()) << why << ": " << s;
    EXPECT_EQ(restored.id, want_id) << why;
    EXPECT_EQ(UserRows(cluster), state[want_id]) << why;
  };
  auto put_back = [&] {
    for (uint64_t id : {2, 3}) {
      std::filesystem::copy_file(UserFile(id) + ".good", UserFile(id),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  };
  auto fs = NewPosixFileSystem();
  FlipByte(UserFile(3));
  Status s = VerifyCheckpointFile(*fs, *ReadCheckpointManifest(ManifestPath(Dir(3))), UserFile(3));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  restore(2, "a flipped byte in the newest increment: the previous increment");
  put_back();
  std::filesystem::resize_file(UserFile(2), std::filesystem::file_size(UserFile(2)) - 5);
  restore(1, "a truncated middle increment: 3 builds on it, so the whole checkpoint");
  put_back();
  std::filesystem::copy_file(foreign, UserFile(3), std::filesystem::copy_options::overwrite_existing);
  s = VerifyCheckpointFile(*fs, *ReadCheckpointManifest(ManifestPath(Dir(3))), UserFile(3));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("copied in from another checkpoint"), std::string::npos) << s;
  restore(2, "another chain's increment of the same checkpoint id");
  put_back();
  restore(3, "the intact chain");
  std::filesystem::remove_all(mine + "-other");
}

}  // namespace
}  // namespace mtps::ps
