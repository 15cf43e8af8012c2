// Every bad request a parameter server can get is answered with the right error code and
// a message naming the values, is counted, changes nothing, and the server keeps serving:
// each case sends a good request right after the bad one. Also: checkpoints of another
// table spec are refused on restore, and a whole checkpoint restores bit-exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "base/checkpoint_manifest.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using Body = proto::Envelope::Body::Builder;
using testing::AsData;
using testing::CallRaw;
using testing::InitialRow;
using testing::InProcessCluster;
using testing::kItemTable;
using testing::kUserDim;
using testing::kUserTable;
using testing::TestJob;

// Keys that server `rank` of `servers` owns (or, with owned=false, does not own).
std::vector<uint64_t> KeysOf(int rank, int servers, size_t count, bool owned = true) {
  std::vector<uint64_t> out;
  for (uint64_t i = 0; out.size() < count; ++i) {
    const uint64_t key = Mix64(i + 77);
    if ((JumpConsistentHash(key, servers) == rank) == owned) out.push_back(key);
  }
  return out;
}

struct BadCase {
  std::string name;
  std::function<void(Body)> fill;
  StatusCode code;
  std::vector<std::string> message_has;  // each must appear in the error message
};

class ServerBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto client = RpcClient::Connect(cluster_.at(0).endpoint, proto::Role::CLIENT, -1);
    ASSERT_TRUE(client.ok()) << client.status();
    raw_ = std::move(client).value();
    // Dense block 0 (owned by server 0) of 3 floats, for the dense cases.
    StatusOr<IncomingMessage> init = CallRaw(*raw_, [&](Body body) {
      auto block = body.initDenseInit().initBlocks(1)[0];
      block.setId(0);
      block.setName("w0");
      block.setValues(AsData(dense_init_));
    });
    ASSERT_TRUE(init.ok()) << init.status();
  }

  // A request every server must answer correctly after any bad one.
  void ExpectGoodPullWorks(const std::string& after) {
    StatusOr<IncomingMessage> reply = CallRaw(*raw_, [&](Body body) {
      auto pull = body.initSparsePull();
      pull.setTableId(kUserTable);
      pull.setKeys(AsData(owned_));
    });
    ASSERT_TRUE(reply.ok()) << "after " << after << ": " << reply.status();
    auto values = reply->envelope().getBody().getSparsePullReply().getValues();
    ASSERT_EQ(values.size(), owned_.size() * kUserDim * sizeof(float));
    float first;
    std::memcpy(&first, values.begin(), sizeof(float));
    EXPECT_EQ(first, row0_[0]) << "after " << after;
  }

  void RunCases(const std::vector<BadCase>& cases) {
    for (const BadCase& c : cases) {
      SCOPED_TRACE(c.name);
      const uint64_t rejected_before = cluster_.at(0).server->rejected_requests();
      StatusOr<IncomingMessage> reply = CallRaw(*raw_, c.fill);
      ASSERT_FALSE(reply.ok()) << "accepted";
      EXPECT_EQ(reply.status().code(), c.code) << reply.status();
      for (const std::string& part : c.message_has)
        EXPECT_NE(reply.status().message().find(part), std::string::npos)
            << "'" << part << "' missing from: " << reply.status();
      EXPECT_EQ(cluster_.at(0).server->rejected_requests(), rejected_before + 1)
          << "a refusal is counted";
      ExpectGoodPullWorks(c.name);
    }
  }

  JobSpec job_ = TestJob();
  InProcessCluster cluster_{job_, 2};
  std::unique_ptr<RpcClient> raw_;
  const std::vector<uint64_t> owned_ = KeysOf(0, 2, 3);
  const std::vector<uint64_t> foreign_ = KeysOf(0, 2, 1, /*owned=*/false);
  const std::vector<float> row0_ = InitialRow(job_.tables[kUserTable], owned_[0]);
  const std::vector<float> dense_init_ = {1.0f, 2.0f, 3.0f};
};

void FillPush(Body body, uint32_t table, const std::vector<uint64_t>& keys,
              const std::vector<float>& grads) {
  auto push = body.initSparsePush();
  push.setTableId(table);
  push.setKeys(AsData(keys));
  push.setGradients(AsData(grads));
}

TEST_F(ServerBadInputTest, SparseRequestsAreCheckedBeforeTheyTouchATable) {
  const std::vector<float> good_grads(owned_.size() * kUserDim, 0.5f);
  std::vector<float> nan_grads = good_grads;
  nan_grads[1 * kUserDim + 2] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> inf_grads = good_grads;
  inf_grads[2 * kUserDim + 7] = -std::numeric_limits<float>::infinity();
  const std::vector<uint8_t> twelve_bytes(12, 1);

  RunCases({
      {"pull of an unknown table",
       [&](Body b) {
         auto pull = b.initSparsePull();
         pull.setTableId(9);
         pull.setKeys(AsData(owned_));
       },
       StatusCode::kNotFound, {"table 9", "2 tables"}},
      {"push to an unknown table", [&](Body b) { FillPush(b, 5, owned_, good_grads); },
       StatusCode::kNotFound, {"table 5", "2 tables"}},
      {"keys blob that is not whole keys",
       [&](Body b) {
         auto pull = b.initSparsePull();
         pull.setTableId(kUserTable);
         pull.setKeys(AsData(twelve_bytes));
       },
       StatusCode::kInvalidArgument, {"12 bytes", "8-byte"}},
      {"gradients of the wrong dimension",
       [&](Body b) {
         FillPush(b, kUserTable, owned_, std::vector<float>(owned_.size() * 4, 0.5f));
       },
       StatusCode::kInvalidArgument, {"dim 8", "3 keys need 24", "got 12"}},
      {"keys and gradients of different lengths",
       [&](Body b) {
         FillPush(b, kUserTable, owned_, std::vector<float>(2 * kUserDim, 0.5f));
       },
       StatusCode::kInvalidArgument, {"3 keys need 24", "got 16"}},
      {"NaN gradient", [&](Body b) { FillPush(b, kUserTable, owned_, nan_grads); },
       StatusCode::kInvalidArgument, {std::to_string(owned_[1]), "nan"}},
      {"infinite gradient", [&](Body b) { FillPush(b, kUserTable, owned_, inf_grads); },
       StatusCode::kInvalidArgument, {std::to_string(owned_[2]), "inf"}},
      {"push of a key another server owns",
       [&](Body b) {
         FillPush(b, kUserTable, foreign_, std::vector<float>(kUserDim, 0.5f));
       },
       StatusCode::kFailedPrecondition,
       {"key " + std::to_string(foreign_[0]), "belongs to server 1", "not to this server 0"}},
      {"pull of a key another server owns",
       [&](Body b) {
         auto pull = b.initSparsePull();
         pull.setTableId(kUserTable);
         pull.setKeys(AsData(foreign_));
       },
       StatusCode::kFailedPrecondition, {"belongs to server 1"}},
      {"sync push without a worker count",
       [&](Body b) {
         FillPush(b, kUserTable, owned_, good_grads);
         b.getSparsePush().setSync(true);
         b.getSparsePush().setStep(3);
       },
       StatusCode::kInvalidArgument, {"numWorkers 0"}},
      {"sync push of a worker rank outside the job",
       [&](Body b) {
         FillPush(b, kUserTable, owned_, good_grads);
         auto push = b.getSparsePush();
         push.setSync(true);
         push.setStep(3);
         push.setNumWorkers(2);
         push.setWorkerRank(5);
       },
       StatusCode::kInvalidArgument, {"5"}},
      {"stats of an unknown table",
       [&](Body b) { b.initStats().initTableIds(1).set(0, 12); },
       StatusCode::kNotFound, {"table 12"}},
  });

  // Nothing above changed a row: the owned keys still have their initial values (or no
  // row), and the tables counted the non-finite pushes.
  for (uint64_t key : owned_) {
    std::vector<float> row(kUserDim);
    bool found = false;
    ASSERT_TRUE(cluster_.at(0).server->tables().ForEachShard(kUserTable, [&](int, EmbeddingTable& t) {
      found |= t.Lookup(key, row.data(), nullptr, nullptr);
    }).ok());
    if (found) {
      EXPECT_EQ(row, InitialRow(job_.tables[kUserTable], key));
    }
  }
  StatusOr<TableCounters> counters = cluster_.at(0).server->tables().Counters(kUserTable);
  EXPECT_EQ(counters->rejected_requests, 2u) << "the NaN and the Inf push";

  // The rejected-request count reaches stats and /metrics.
  StatusOr<IncomingMessage> stats =
      CallRaw(*raw_, [](Body b) { b.initStats().initTableIds(1).set(0, kUserTable); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->envelope().getBody().getStatsReply().getTables()[0].getRejectedRequests(), 8u);
  const std::string metrics = cluster_.at(0).metrics.Render();
  EXPECT_NE(metrics.find("mtps_ps_rejected_requests_total{kind=\"sparse_push\"} 8"),
            std::string::npos)
      << metrics;
}

void FillDensePush(Body body, uint32_t id, const std::vector<float>& grads) {
  auto block = body.initDensePush().initBlocks(1)[0];
  block.setId(id);
  block.setValues(AsData(grads));
}

TEST_F(ServerBadInputTest, DenseRequestsAreCheckedBeforeTheyTouchABlock) {
  const std::vector<float> nan_grads = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  RunCases({
      {"push to an unknown block", [](Body b) { FillDensePush(b, 4, {1, 2, 3}); },
       StatusCode::kNotFound, {"4"}},
      {"push of the wrong size", [](Body b) { FillDensePush(b, 0, {1, 2}); },
       StatusCode::kInvalidArgument, {"block 0", "3 floats", "2 gradients"}},
      {"NaN dense gradient", [&](Body b) { FillDensePush(b, 0, nan_grads); },
       StatusCode::kInvalidArgument, {"block 0", "nan"}},
      {"push to a block another server owns", [](Body b) { FillDensePush(b, 1, {1}); },
       StatusCode::kFailedPrecondition, {"dense block 1", "belongs to server 1"}},
      {"the same block twice in one push",
       [](Body b) {
         auto blocks = b.initDensePush().initBlocks(2);
         for (int i = 0; i < 2; ++i) {
           blocks[i].setId(0);
           blocks[i].setValues(AsData(std::vector<float>{1, 1, 1}));
         }
       },
       StatusCode::kInvalidArgument, {"block 0", "twice"}},
      {"init of an existing block with another size",
       [](Body b) {
         auto block = b.initDenseInit().initBlocks(1)[0];
         block.setId(0);
         block.setValues(AsData(std::vector<float>{1, 2, 3, 4}));
       },
       StatusCode::kInvalidArgument, {"block 0", "3 floats", "sent 4"}},
      {"pull of an unknown block", [](Body b) { b.initDensePull().initBlockIds(1).set(0, 6); },
       StatusCode::kNotFound, {"6"}},
      {"pull of a block another server owns",
       [](Body b) { b.initDensePull().initBlockIds(1).set(0, 3); },
       StatusCode::kFailedPrecondition, {"dense block 3", "belongs to server 1"}},
      {"commit of a checkpoint never begun",
       [](Body b) { b.initCheckpointCommit().setCheckpointId(99); },
       StatusCode::kNotFound, {"checkpoint 99"}},
      {"checkpoint on a server without a checkpoint root",
       [](Body b) { b.initCheckpointBegin().setCheckpointId(1); },
       StatusCode::kFailedPrecondition, {"checkpoint 1", "no checkpoint root"}},
      {"checkpoint into a directory the message names",
       [](Body b) {
         b.initCheckpointBegin().setCheckpointId(2);
         b.getCheckpointBegin().setDir("/tmp/../tmp/anywhere");
       },
       StatusCode::kFailedPrecondition, {"checkpoint 2", "no checkpoint root"}},
  });
  std::vector<float> block(3);
  ASSERT_TRUE(cluster_.at(0).server->dense().Pull(0, block.data(), 3).ok());
  EXPECT_EQ(block, dense_init_) << "no bad push changed the block";
}

TEST_F(ServerBadInputTest, AKindTheServerDoesNotServeIsRefusedAndItKeepsServing) {
  StatusOr<IncomingMessage> reply =
      CallRaw(*raw_, [](Body b) { b.initHeartbeat().setStep(1); });
  EXPECT_EQ(reply.status().code(), StatusCode::kUnimplemented) << reply.status();
  ExpectGoodPullWorks("a heartbeat");
}

// Writes a checkpoint through the server's own handlers: begin, then commit.
// `files` (optional) receives the files the server acknowledged, for a manifest.
void Checkpoint(RpcClient& raw, uint64_t id, const std::string& dir,
                std::vector<CheckpointFileInfo>* files = nullptr) {
  StatusOr<IncomingMessage> begun = CallRaw(raw, [&](Body b) {
    auto begin = b.initCheckpointBegin();
    begin.setCheckpointId(id);
    begin.setDir(dir);
    begin.setStep(10 * id);
  });
  ASSERT_TRUE(begun.ok()) << begun.status();
  auto ack = begun->envelope().getBody().getCheckpointAck();
  EXPECT_EQ(ack.getCheckpointId(), id);
  EXPECT_EQ(ack.getFiles().size(), 3u) << "two tables and the dense blocks";
  for (auto f : ack.getFiles()) {
    if (files != nullptr) files->push_back({f.getPath(), f.getBytes(), f.getChecksum()});
  }
  StatusOr<IncomingMessage> committed =
      CallRaw(raw, [&](Body b) { b.initCheckpointCommit().setCheckpointId(id); });
  ASSERT_TRUE(committed.ok()) << committed.status();
}

TEST(ServerCheckpoint, RestoresTheNewestWholeCheckpointAndRefusesAnotherTableSpec) {
  const std::string root = ::testing::TempDir() + "/ps_server_ckpt_" +
                           std::to_string(::getpid());
  std::filesystem::remove_all(root);
  const JobSpec job = TestJob();
  const auto keys = KeysOf(0, 1, 50);
  const std::vector<float> grads(keys.size() * kUserDim, 0.125f);
  std::vector<float> saved(keys.size() * kUserDim);
  {
    InProcessCluster cluster(job, 1, 2, {.checkpoint_root = root});
    ServerOptions options = cluster.at(0).server->options();
    EXPECT_FALSE(options.write_manifest);
    auto& server = *cluster.at(0).server;
    ASSERT_TRUE(server.tables().Push(kUserTable, keys.data(), grads.data(), keys.size(), 1).ok());
    std::vector<float> w = {1, 2};
    ASSERT_TRUE(server.dense().Init(4, "w4", w.data(), w.size()).ok());
    auto raw = RpcClient::Connect(cluster.at(0).endpoint, proto::Role::SCHEDULER, -1);
    ASSERT_TRUE(raw.ok());
    std::vector<CheckpointFileInfo> files;
    Checkpoint(**raw, 1, "/ignored/by/the/server", &files);
    // Under a scheduler the server writes no manifest: the scheduler's MANIFEST makes it whole.
    ASSERT_FALSE(std::filesystem::exists(ServerManifestPath(CheckpointDir(root, 1), 0)));
    auto fs = NewPosixFileSystem();
    ASSERT_TRUE(WriteCheckpointManifest(*fs, ManifestPath(CheckpointDir(root, 1)),
                                        CheckpointManifest{1, 10, files})
                    .ok());
    ASSERT_TRUE(server.tables().Pull(kUserTable, keys.data(), keys.size(), saved.data(), 2, false).ok());
    // A later checkpoint that was begun but never committed is not whole.
    ASSERT_TRUE(server.tables().Push(kUserTable, keys.data(), grads.data(), keys.size(), 2).ok());
    StatusOr<IncomingMessage> begun = CallRaw(**raw, [&](Body b) {
      auto begin = b.initCheckpointBegin();
      begin.setCheckpointId(2);
      begin.setDir(root + "/../elsewhere");  // ignored: the id picks the place
    });
    ASSERT_TRUE(begun.ok()) << begun.status();
    EXPECT_FALSE(std::filesystem::exists(root + "/../elsewhere")) << "a message chose the place";
    EXPECT_TRUE(std::filesystem::exists(CheckpointDir(root, 2)));
  }

  {  // Same spec: the rows come back bit-exactly from checkpoint 1, not 2.
    InProcessCluster cluster(job, 1);
    ASSERT_TRUE(cluster.at(0).server->Restore(root).ok());
    std::vector<float> restored(keys.size() * kUserDim);
    ASSERT_TRUE(cluster.at(0).server->tables()
                    .Pull(kUserTable, keys.data(), keys.size(), restored.data(), 3, false)
                    .ok());
    EXPECT_EQ(std::memcmp(restored.data(), saved.data(), saved.size() * sizeof(float)), 0);
    EXPECT_TRUE(cluster.at(0).server->dense().Size(4).ok());
  }

  {  // Another table spec (user dim 16): refused, naming the file; nothing loaded.
    std::string yaml = testing::kTestJob;
    yaml.replace(yaml.find("dim: 8"), 6, "dim: 16");
    InProcessCluster cluster(TestJob(yaml), 1);
    Status restored = cluster.at(0).server->Restore(root);
    EXPECT_EQ(restored.code(), StatusCode::kFailedPrecondition) << restored;
    EXPECT_NE(restored.message().find("table-user"), std::string::npos) << restored;
    EXPECT_EQ(cluster.at(0).server->tables().Counters(kUserTable)->rows, 0u);
    EXPECT_EQ(cluster.at(0).server->tables().Counters(kItemTable)->rows, 0u);
    EXPECT_EQ(cluster.at(0).server->dense().num_blocks(), 0u);
  }
  std::filesystem::remove_all(root);
}

TEST(ServerCheckpoint, RestoreWithoutAWholeCheckpointIsNotFound) {
  const std::string root = ::testing::TempDir() + "/ps_server_empty_" + std::to_string(::getpid());
  std::filesystem::create_directories(root + "/ckpt-5");  // begun, never committed
  InProcessCluster cluster(TestJob(), 1);
  Status restored = cluster.at(0).server->Restore(root);
  EXPECT_EQ(restored.code(), StatusCode::kNotFound) << restored;
  EXPECT_NE(restored.message().find(root), std::string::npos) << restored;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace mtps::ps
