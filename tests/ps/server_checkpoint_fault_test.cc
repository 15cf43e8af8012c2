// A parameter server whose disk fails in the middle of a checkpoint (through the Env's
// file system): the checkpoint request gets an error naming the failure, the server goes
// on serving pulls, pushes and later checkpoints, and the previous checkpoint stays whole.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/checkpoint_manifest.h"
#include "tests/common/faulty_file_system.h"
#include "tests/common/test_files.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using ::mtps::testing::FaultyFileSystem;
using ::mtps::testing::ScratchDir;
using ::testing::HasSubstr;
using testing::CallRaw;
using testing::InProcessCluster;
using testing::kUserDim;
using testing::kUserTable;
using testing::TestJob;
using Body = proto::Envelope::Body::Builder;
using Op = FaultyFileSystem::Op;

class ServerCheckpointFaultTest : public ::testing::Test {
 protected:
  ServerCheckpointFaultTest() : keys_(testing::SomeKeys(40)) {}

  ServerOptions Options(FileSystem* fs) {
    ServerOptions options;
    options.checkpoint_root = root_.path();
    options.write_manifest = true;  // standalone: the server commits its own manifest
    options.env = Env{.fs = fs};
    return options;
  }
  // Pushes `grad` to every key of the user table over the network.
  void Push(InProcessCluster& cluster, float grad) {
    const std::vector<float> grads(keys_.size() * kUserDim, grad);
    ASSERT_TRUE(cluster.at(0)
                    .server->tables()
                    .Push(kUserTable, keys_.data(), grads.data(), keys_.size(), 1)
                    .ok());
  }
  Status Checkpoint(InProcessCluster& cluster, uint64_t id) {
    auto scheduler = RpcClient::Connect(cluster.at(0).endpoint, proto::Role::SCHEDULER, -1);
    if (!scheduler.ok()) return scheduler.status();
    StatusOr<IncomingMessage> begun = CallRaw(**scheduler, [&](Body b) {
      b.initCheckpointBegin().setCheckpointId(id);
      b.getCheckpointBegin().setStep(100 * id);
    });
    if (!begun.ok()) return begun.status();
    return CallRaw(**scheduler, [&](Body b) { b.initCheckpointCommit().setCheckpointId(id); })
        .status();
  }
  std::vector<float> UserRows(InProcessCluster& cluster) {
    std::vector<float> rows(keys_.size() * kUserDim);
    EXPECT_TRUE(cluster.at(0)
                    .server->tables()
                    .Pull(kUserTable, keys_.data(), keys_.size(), rows.data(), 1000, false)
                    .ok());
    return rows;
  }

  ScratchDir root_;
  std::vector<uint64_t> keys_;
};

TEST_F(ServerCheckpointFaultTest, ADiskFailingMidCheckpointIsAnErrorAndThePreviousStaysWhole) {
  const JobSpec job = TestJob();
  FaultyFileSystem disk;
  std::vector<float> first;
  {
    InProcessCluster cluster(job, 1, 2, Options(&disk));
    Push(cluster, 0.5f);
    ASSERT_TRUE(Checkpoint(cluster, 1).ok());
    first = UserRows(cluster);

    // Checkpoint 2: the first table file is written whole, the second one's fsync fails.
    Push(cluster, 0.25f);
    disk.FailAt(Op::kSync, 2, CheckpointDir(root_.path(), 2));
    Status failed = Checkpoint(cluster, 2);
    EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed;
    EXPECT_THAT(failed.message(), HasSubstr("checkpoint 2"));
    EXPECT_THAT(failed.message(), HasSubstr("injected fsync failure"));
    EXPECT_EQ(disk.injected(), 1);
    EXPECT_FALSE(std::filesystem::exists(ServerManifestPath(CheckpointDir(root_.path(), 2), 0)));
    for (const auto& entry : std::filesystem::directory_iterator(CheckpointDir(root_.path(), 2)))
      EXPECT_NE(entry.path().extension(), ".tmp") << "a temporary left behind: " << entry.path();

    // The server goes on: it trains, and once the disk is back it checkpoints again.
    const std::vector<float> before = UserRows(cluster);
    Push(cluster, 0.125f);
    EXPECT_NE(UserRows(cluster), before);
    disk.Heal();
    ASSERT_TRUE(Checkpoint(cluster, 3).ok());
  }
  // Checkpoint 2 never became whole; without checkpoint 3 a restart finds checkpoint 1.
  std::filesystem::remove_all(CheckpointDir(root_.path(), 3));
  InProcessCluster restarted(job, 1, 2, Options(DefaultFileSystem()));
  CheckpointManifest restored;
  ASSERT_TRUE(restarted.at(0).server->Restore(root_.path(), &restored).ok());
  EXPECT_EQ(restored.id, 1u);
  EXPECT_EQ(UserRows(restarted), first);
}

TEST_F(ServerCheckpointFaultTest, AFullDiskFailsEveryCheckpointUntilItHasRoom) {
  const JobSpec job = TestJob();
  FaultyFileSystem disk;
  InProcessCluster cluster(job, 1, 2, Options(&disk));
  Push(cluster, 0.5f);
  disk.FailAt(Op::kAppend, 1, "", /*sticky=*/true);
  for (uint64_t id : {1, 2}) {
    Status failed = Checkpoint(cluster, id);
    EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed;
    EXPECT_THAT(failed.message(), HasSubstr("injected write (disk full) failure"));
  }
  EXPECT_EQ(ListWholeCheckpoints(root_.path(), 0).size(), 0u);
  disk.Heal();
  ASSERT_TRUE(Checkpoint(cluster, 3).ok());
  ASSERT_EQ(ListWholeCheckpoints(root_.path(), 0).size(), 1u);
}

}  // namespace
}  // namespace mtps::ps
