// Every one-bit flip and every truncation of every file of an increment chain (the whole
// table files, each increment, the dense files, each manifest with its list of increments):
// a server's restore either fails with DATA_LOSS naming the damage and leaves its tables as
// they were, or restores an older checkpoint exactly as it was written (rows byte for byte,
// dense blocks, step, data positions) and says which — never a state no checkpoint held.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "base/checkpoint_manifest.h"
#include "ps/checkpoint.h"
#include "ps/server.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

namespace fs = std::filesystem;
using testing::kItemTable;
using testing::kUserTable;

constexpr int kShards = 2;
constexpr uint64_t kCheckpoints = 3;  // 1 whole, 2 and 3 increments

// Everything a restore brings back, bytes exactly.
struct State {
  std::map<uint64_t, std::string> rows[2];  // per table: key -> meta and stored values
  std::vector<std::string> dense;          // per block: id, name, count, values, state
  uint64_t step = 0;
  std::vector<std::string> workers;  // "rank epoch records step"
  bool operator==(const State&) const = default;
};

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

State Capture(ShardedTables& tables, const DenseBlockStore& dense) {
  State s;
  for (uint32_t t : {kUserTable, kItemTable}) {
    EXPECT_TRUE(tables
                    .ForEachShard(t, [&](int, EmbeddingTable& table) {
                      const size_t bytes = table.layout().stored_value_bytes();
                      table.ForEachStoredRow([&](uint64_t key, const char* v, const RowMeta& m) {
                        s.rows[t][key] = Bytes(&m, sizeof(m)) + std::string(v, bytes);
                      });
                    })
                    .ok());
  }
  for (const DenseBlockSnapshot& b : dense.Snapshot()) {
    s.dense.push_back(std::to_string(b.id) + " " + b.name + " " + std::to_string(b.update_count) +
                      Bytes(b.values.data(), b.values.size() * 4) +
                      Bytes(b.state.data(), b.state.size() * 4));
  }
  return s;
}

// Counts per file what each damage led to, for the failure message.
struct Tally {
  int refused = 0;
  std::map<uint64_t, int> restored;  // checkpoint id -> times
  std::string Text() const {
    std::string s = std::to_string(refused) + " refused";
    for (auto [id, n] : restored) s += ", " + std::to_string(n) + " restored " + std::to_string(id);
    return s;
  }
};

// What a restore must bring back when `path` is damaged: the newest checkpoint that does not
// read it (0: none). A table file or manifest of checkpoint d is read by d and by every
// later checkpoint (their increments build on it); a dense file only by its own.
uint64_t ExpectedAfterDamage(const std::string& path) {
  const uint64_t d = std::stoull(fs::path(path).parent_path().filename().string().substr(5));
  if (path.find(".dense.") == std::string::npos) return d - 1;
  return d == kCheckpoints ? d - 1 : kCheckpoints;
}

class CheckpointChainDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/ps_chain_damage_" + std::to_string(::getpid());
    fs::remove_all(root_);
    job_ = testing::TestJob(std::string(testing::kTestJob) + "checkpoint: {full_every: 3}\n");
    WriteChain();
    server_ = *Server::Create(job_, {.rank = 0, .num_servers = 1, .shards = kShards}, nullptr);
    // Thousands of refused restores each log why; only this test's own lines matter.
    saved_log_level_ = FLAGS_minloglevel;
    FLAGS_minloglevel = 3;
  }
  void TearDown() override {
    FLAGS_minloglevel = saved_log_level_;
    if (!HasFailure()) fs::remove_all(root_);
  }

  // Checkpoints 1 (whole), 2 and 3 (increments over the previous one) of both tables and
  // the dense blocks, as a server writes them, with the scheduler's manifest; rows are
  // changed and made between them. Keeps what each checkpoint holds in expected_[id].
  void WriteChain() {
    auto tables = *ShardedTables::Create(job_.tables, kShards);
    DenseBlockStore dense(job_.training.dense_optimizer);
    const std::vector<float> block = {0.5f, -1.0f, 2.0f};
    ASSERT_TRUE(dense.Init(4, "tower/w", block.data(), block.size()).ok());
    auto posix = NewPosixFileSystem();
    for (uint64_t id = 1; id <= kCheckpoints; ++id) {
      for (uint32_t t : {kUserTable, kItemTable}) {
        // A few keys change in each checkpoint, a few are new.
        std::vector<uint64_t> keys = testing::SomeKeys(6, 1);
        const std::vector<uint64_t> fresh = testing::SomeKeys(2, 10 + id);
        if (id > 1) keys.resize(2);
        keys.insert(keys.end(), fresh.begin(), fresh.end());
        const std::vector<float> grads(keys.size() * job_.tables[t].dim, 0.125f * id);
        ASSERT_TRUE(tables->Push(t, keys.data(), grads.data(), keys.size(), 10 * id).ok());
      }
      ASSERT_TRUE(dense.Push(4, block.data(), block.size()).ok());
      const std::string dir = CheckpointDir(root_, id);
      ASSERT_TRUE(posix->CreateDirs(dir).ok());
      CheckpointManifest manifest{.id = id, .step = 100 * id};
      for (uint32_t t : {kUserTable, kItemTable}) {
        const std::string path = TableCheckpointPath(dir, 0, job_.tables[t].name);
        StatusOr<CheckpointFileInfo> info =
            id == 1 ? SaveTableCheckpoint(*posix, path, *tables, t)
                    : SaveTableIncrement(*posix, path, *tables, t, id, id - 1);
        ASSERT_TRUE(info.ok()) << info.status();
        manifest.files.push_back(*info);
      }
      StatusOr<CheckpointFileInfo> info =
          SaveDenseCheckpoint(*posix, DenseCheckpointPath(dir, 0), dense);
      ASSERT_TRUE(info.ok()) << info.status();
      manifest.files.push_back(*info);
      manifest.workers = {{0, 0, 1000 * id, 100 * id}, {1, 1, 7 * id, 100 * id}};
      ASSERT_TRUE(WriteCheckpointManifest(*posix, ManifestPath(dir), manifest).ok());
      expected_[id] = Capture(*tables, dense);
      expected_[id].step = manifest.step;
      for (const WorkerPosition& w : manifest.workers) expected_[id].workers.push_back(Text(w));
      for (const CheckpointFileInfo& f : manifest.files) chain_files_.push_back(f.path);
      chain_files_.push_back(ManifestPath(dir));
    }
  }
  static std::string Text(const WorkerPosition& w) {
    return std::to_string(w.rank) + " " + std::to_string(w.epoch) + " " +
           std::to_string(w.records) + " " + std::to_string(w.step);
  }

  // Restores into the one server. OK: the checkpoint it names must be restored exactly.
  // An error: DATA_LOSS naming the root, and the server's state as before.
  struct Outcome {
    bool ok = false;
    uint64_t id = 0;
  };
  Outcome Restore(const std::string& what) {
    const State before = Capture(server_->tables(), server_->dense());
    CheckpointManifest restored;
    const Status s = server_->Restore(root_, &restored);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << what << ": " << s;
      EXPECT_NE(s.message().find(root_), std::string::npos) << what << ": " << s;
      State after = Capture(server_->tables(), server_->dense());
      EXPECT_TRUE(after == before) << what << ": a refused restore changed the server";
      return {};
    }
    EXPECT_TRUE(restored.id >= 1 && restored.id <= kCheckpoints) << what << ": id " << restored.id;
    if (restored.id < 1 || restored.id > kCheckpoints) return {};
    State got = Capture(server_->tables(), server_->dense());
    got.step = restored.step;
    for (const WorkerPosition& w : restored.workers) got.workers.push_back(Text(w));
    const State& want = expected_[restored.id];
    EXPECT_TRUE(got.rows[0] == want.rows[0] && got.rows[1] == want.rows[1])
        << what << ": rows differ from checkpoint " << restored.id << "'s";
    EXPECT_EQ(got.dense, want.dense) << what << ": dense blocks of checkpoint " << restored.id;
    EXPECT_EQ(got.step, want.step) << what << ": step of checkpoint " << restored.id;
    EXPECT_EQ(got.workers, want.workers) << what << ": data positions of checkpoint " << restored.id;
    return {true, restored.id};
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  // Writes `damage(path, good, i)` = {damaged bytes, what} in place of every file of the
  // chain, for each i below the file's size, and checks each restore: refused, or exactly
  // the newest checkpoint that does not read the damaged file. Returns the restores run.
  using Damage = std::function<std::pair<std::string, std::string>(const std::string& path,
                                                                   const std::string& good, size_t i)>;
  int ExpectEveryDamageRefusedOrOlder(const Damage& damage) {
    int restores = 0;
    for (const std::string& path : chain_files_) {
      const std::string good = Read(path);
      const uint64_t want = ExpectedAfterDamage(path);
      Tally tally;
      for (size_t i = 0; i < good.size(); ++i) {
        const auto [bad, what] = damage(path, good, i);
        Write(path, bad);
        const Outcome o = Restore(what);
        ++restores;
        o.ok ? ++tally.restored[o.id] : ++tally.refused;
        EXPECT_EQ(o.ok ? o.id : 0, want) << what;
        if (HasFailure()) {
          Write(path, good);
          ADD_FAILURE() << what << " (" << tally.Text() << ")";
          return restores;
        }
      }
      Write(path, good);
    }
    EXPECT_EQ(Restore("after putting every file back").id, kCheckpoints);
    return restores;
  }

  std::string root_;
  JobSpec job_;
  std::map<uint64_t, State> expected_;
  std::vector<std::string> chain_files_;
  std::unique_ptr<Server> server_;
  int saved_log_level_ = 0;
};


TEST_F(CheckpointChainDamageTest, TheIntactChainRestoresTheNewestCheckpoint) {
  const Outcome o = Restore("intact");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.id, kCheckpoints);
  EXPECT_EQ(chain_files_.size(), 4 * kCheckpoints);
}


TEST_F(CheckpointChainDamageTest, EveryFlippedBitIsRefusedOrRestoresAnOlderCheckpointExactly) {
  const int restores = ExpectEveryDamageRefusedOrOlder([](const std::string& path, const std::string& good, size_t at) {
    // One bit per byte, each bit position in turn (8 restores per byte would add little).
    const int bit = 1 << (at % 8);
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ bit);
    return std::make_pair(bad, path + " with bit " + std::to_string(bit) + " of byte " + std::to_string(at) +
                                   " flipped");
  });
  std::printf("%d damaged chains restored or refused as expected\n", restores);
}

TEST_F(CheckpointChainDamageTest, EveryTruncationIsRefusedOrRestoresAnOlderCheckpointExactly) {
  const int restores = ExpectEveryDamageRefusedOrOlder([](const std::string& path, const std::string& good, size_t size) {
    return std::make_pair(good.substr(0, size), path + " cut to " + std::to_string(size) + " of " +
                                                    std::to_string(good.size()) + " bytes");
  });
  std::printf("%d truncated chains restored or refused as expected\n", restores);
}

}  // namespace
}  // namespace mtps::ps
