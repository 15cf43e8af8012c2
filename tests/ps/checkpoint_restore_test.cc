// Restore checks every file against the manifest's size and CRC32C: a file copied in from
// another checkpoint or damaged on disk is refused, and the previous whole checkpoint is used.
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
  // scheduler's cluster manifest (as CheckpointCoordinator does).
  void PushAndCheckpoint(InProcessCluster& cluster, uint64_t id, float grad) {
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
      manifest.files.push_back({f.getPath(), f.getBytes(), f.getChecksum()});
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

}  // namespace
}  // namespace mtps::ps
