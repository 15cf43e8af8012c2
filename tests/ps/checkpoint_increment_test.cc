// Incremental table checkpoints: a whole file plus increments restores bit for bit the
// state a whole checkpoint of the same moment holds (rows changed, made, evicted, expired
// and erased between them); a damaged or foreign increment is refused and changes nothing.
#include "ps/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace mtps::ps {
namespace {

namespace fs = std::filesystem;

constexpr int kShards = 4;

TableSpec MakeSpec(Precision precision = Precision::kFp32) {
  TableSpec spec;
  spec.name = "user";
  spec.dim = 16;
  spec.optimizer.type = OptimizerSpec::Type::kAdagrad;
  spec.seed = 11;
  spec.capacity_rows = 4000;  // full: new rows evict old ones
  spec.ttl_steps = 50;        // and idle rows expire
  spec.precision = precision;
  return spec;
}

// Every row as stored, bytes exactly: key -> meta and weights/state as kept in the slab.
struct StoredRow {
  std::string values;
  RowMeta meta;
  bool operator==(const StoredRow&) const = default;
};
using Rows = std::map<uint64_t, StoredRow>;

void AddRows(EmbeddingTable& t, Rows& rows) {
  const size_t bytes = t.layout().stored_value_bytes();
  t.ForEachStoredRow([&](uint64_t key, const char* v, const RowMeta& m) {
    rows[key] = {std::string(v, bytes), m};
  });
}
Rows AllRows(ShardedTables& tables) {
  Rows rows;
  EXPECT_TRUE(tables.ForEachShard(0, [&](int, EmbeddingTable& t) { AddRows(t, rows); }).ok());
  return rows;
}
Rows AllRows(const std::vector<std::unique_ptr<EmbeddingTable>>& parts) {
  Rows rows;
  for (const auto& part : parts) AddRows(*part, rows);
  return rows;
}

class CheckpointIncrementTest : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mtps_incr_" + std::to_string(getpid()) + "_" +
            std::to_string(static_cast<int>(GetParam())) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(fs_->CreateDirs(dir_).ok());
    auto tables = ShardedTables::Create({MakeSpec(GetParam())}, kShards);
    ASSERT_TRUE(tables.ok()) << tables.status();
    tables_ = std::move(tables).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string File(uint64_t id) const { return (dir_ / ("ckpt-" + std::to_string(id))).string(); }

  // Pushes keys [first, first + count) at `step`, pulls every third of them as sightings.
  void Train(uint64_t first, uint64_t count, uint64_t step, float grad) {
    std::vector<uint64_t> keys;
    for (uint64_t k = first; k < first + count; ++k) keys.push_back(k * 0x9e3779b97f4a7c15ull + 7);
    std::vector<float> grads(keys.size() * 16);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = grad * static_cast<float>(i % 13 + 1);
    ASSERT_TRUE(tables_->Push(0, keys.data(), grads.data(), keys.size(), step).ok());
    std::vector<uint64_t> seen;
    for (size_t i = 0; i < keys.size(); i += 3) seen.push_back(keys[i]);
    std::vector<float> out(seen.size() * 16);
    ASSERT_TRUE(tables_->Pull(0, seen.data(), seen.size(), out.data(), step, true).ok());
  }
  uint64_t Key(uint64_t k) const { return k * 0x9e3779b97f4a7c15ull + 7; }
  void Erase(uint64_t key) {
    ASSERT_TRUE(tables_->ForEachShard(0, [&](int, EmbeddingTable& t) { t.Erase(key); }).ok());
  }
  ChainFile Link(uint64_t id, uint64_t base) const {
    CheckpointManifest manifest;
    manifest.id = id;
    return ChainFile{File(id), manifest, base};
  }

  // Checkpoint 1 whole, 2 and 3 increments, with every kind of change between them.
  void WriteChain() {
    Train(0, 3000, 1, 0.01f);
    ASSERT_TRUE(SaveTableCheckpoint(*fs_, File(1), *tables_, 0).ok());
    Train(100, 400, 10, -0.02f);  // changed rows
    Erase(Key(5));                // rows of the whole file erased (5 is made again below)
    Erase(Key(60));
    Train(2900, 1500, 20, 0.03f);  // new rows past the capacity: old ones evicted
    StatusOr<CheckpointFileInfo> two = SaveTableIncrement(*fs_, File(2), *tables_, 0, 2, 1);
    ASSERT_TRUE(two.ok()) << two.status();
    EXPECT_EQ(two->base_id, 1u);
    Train(4000, 300, 90, 0.05f);  // rows idle since step 20 or before expire as they are met
    Train(0, 50, 90, 0.07f);      // keys evicted or erased before come back
    Erase(Key(4100));             // a row made since the last checkpoint erased again
    ASSERT_TRUE(SaveTableIncrement(*fs_, File(3), *tables_, 0, 3, 2).ok());
    const TableCounters c = *tables_->Counters(0);
    EXPECT_GT(c.evicted, 0u);
    EXPECT_GT(c.expired, 0u);
  }

  std::unique_ptr<FileSystem> fs_ = NewPosixFileSystem();
  fs::path dir_;
  std::unique_ptr<ShardedTables> tables_;
};

TEST_P(CheckpointIncrementTest, AChainRestoresBitForBitTheWholeCheckpointOfTheSameStep) {
  WriteChain();
  if (HasFatalFailure()) return;
  const Rows live = AllRows(*tables_);
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, File(99), *tables_, 0).ok());  // whole, same moment
  // The increments hold far less than the whole file.
  EXPECT_LT(fs::file_size(File(3)), fs::file_size(File(99)) / 2);

  // The same shard count: each shard's capacity (capacity_rows / shards) as written.
  auto chain = LoadTableChain(*fs_, {Link(1, 0), Link(2, 1), Link(3, 2)}, MakeSpec(GetParam()),
                              kShards);
  ASSERT_TRUE(chain.ok()) << chain.status();
  auto whole = LoadTableParts(*fs_, File(99), MakeSpec(GetParam()), kShards);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const Rows from_chain = AllRows(*chain);
  EXPECT_EQ(from_chain.size(), live.size());
  EXPECT_TRUE(from_chain == AllRows(*whole));
  EXPECT_TRUE(from_chain == live);
  // Erased rows do not come back (nor do evicted and expired ones: the equality above);
  // a key erased and made again has its new row.
  EXPECT_EQ(from_chain.count(Key(60)), 0u);
  EXPECT_EQ(from_chain.count(Key(4100)), 0u);
  EXPECT_EQ(from_chain.count(Key(5)), 1u);
}

TEST_P(CheckpointIncrementTest, AnIncrementNeedsATableThatKnowsItsChanges) {
  Train(0, 100, 1, 0.01f);
  // Never written: the table cannot say what changed since.
  StatusOr<CheckpointFileInfo> info = SaveTableIncrement(*fs_, File(2), *tables_, 0, 2, 1);
  EXPECT_EQ(info.status().code(), StatusCode::kFailedPrecondition) << info.status();
  EXPECT_NE(info.status().message().find("needs a whole one"), std::string::npos) << info.status();
  EXPECT_FALSE(fs::exists(File(2)));
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, File(1), *tables_, 0).ok());
  // Nothing changed since: an empty increment, and a base that is not older is refused.
  EXPECT_TRUE(SaveTableIncrement(*fs_, File(2), *tables_, 0, 2, 1).ok());
  EXPECT_EQ(SaveTableIncrement(*fs_, File(3), *tables_, 0, 3, 3).status().code(),
            StatusCode::kInvalidArgument);
  auto chain = LoadTableChain(*fs_, {Link(1, 0), Link(2, 1)}, MakeSpec(GetParam()), kShards);
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(AllRows(*chain) == AllRows(*tables_));
}

TEST_P(CheckpointIncrementTest, ADamagedOrForeignIncrementIsRefusedAndChangesNothing) {
  WriteChain();
  if (HasFatalFailure()) return;
  auto base = LoadTableChain(*fs_, {Link(1, 0), Link(2, 1)}, MakeSpec(GetParam()), kShards);
  ASSERT_TRUE(base.ok()) << base.status();
  const Rows before = AllRows(*base);
  const std::string good = File(3) + ".good";
  fs::copy_file(File(3), good);
  const uint64_t size = fs::file_size(good);

  // A byte flipped anywhere: header, a block in the middle, the footer.
  for (uint64_t at : {uint64_t{20}, size / 2, size - 6}) {
    fs::copy_file(good, File(3), fs::copy_options::overwrite_existing);
    {
      std::fstream f(File(3), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(at));
      char c = 0;
      f.get(c);
      f.seekp(static_cast<std::streamoff>(at));
      f.put(static_cast<char>(c ^ 0x20));
    }
    Status s = ApplyTableIncrement(*fs_, File(3), 3, 2, *base);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << "byte " << at << ": " << s;
    EXPECT_NE(s.message().find(File(3)), std::string::npos) << s;
    EXPECT_TRUE(AllRows(*base) == before) << "byte " << at;
  }
  // Cut short.
  fs::copy_file(good, File(3), fs::copy_options::overwrite_existing);
  fs::resize_file(File(3), size - size / 3);
  Status s = ApplyTableIncrement(*fs_, File(3), 3, 2, *base);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s;
  EXPECT_TRUE(AllRows(*base) == before);
  // Another checkpoint's increment in its place: the ids it was written with say so.
  s = ApplyTableIncrement(*fs_, File(2), 3, 2, *base);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("copied in from another chain"), std::string::npos) << s;
  EXPECT_TRUE(AllRows(*base) == before);
  // A whole file where an increment belongs, and an increment where the whole file does.
  s = ApplyTableIncrement(*fs_, File(1), 3, 2, *base);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_EQ(LoadTableChain(*fs_, {Link(2, 0)}, MakeSpec(GetParam()), kShards).status().code(),
            StatusCode::kDataLoss);
  // The intact file still applies.
  fs::copy_file(good, File(3), fs::copy_options::overwrite_existing);
  ASSERT_TRUE(ApplyTableIncrement(*fs_, File(3), 3, 2, *base).ok());
  EXPECT_TRUE(AllRows(*base) == AllRows(*tables_));
}

INSTANTIATE_TEST_SUITE_P(Precisions, CheckpointIncrementTest,
                         ::testing::Values(Precision::kFp32, Precision::kBf16),
                         [](const ::testing::TestParamInfo<Precision>& p) {
                           return std::string(PrecisionName(p.param));
                         });

TEST(EmbeddingTableChangesTest, TooManyRemovalsStopTrackingUntilTheNextReset) {
  TableSpec spec = MakeSpec();
  spec.capacity_rows = 0;
  spec.ttl_steps = 0;
  spec.dim = 1;
  auto table = EmbeddingTable::Create(spec);
  ASSERT_TRUE(table.ok());
  EmbeddingTable& t = **table;
  EXPECT_FALSE(t.ChangesTracked());  // never written
  std::vector<uint64_t> keys(70000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = i + 1;
  std::vector<float> grads(keys.size(), 0.1f);
  ASSERT_TRUE(t.Push(keys.data(), grads.data(), keys.size(), 1).ok());
  t.ResetChanges();
  EXPECT_TRUE(t.ChangesTracked());
  for (uint64_t key = 1; key <= 65536; ++key) t.Erase(key);
  EXPECT_TRUE(t.ChangesTracked());
  EXPECT_EQ(t.RemovedKeys().size(), 65536u);
  t.Erase(65537);  // more removals than max(rows, 65536): a whole checkpoint is as small
  EXPECT_FALSE(t.ChangesTracked());
  EXPECT_TRUE(t.RemovedKeys().empty());
  t.ResetChanges();
  EXPECT_TRUE(t.ChangesTracked());
  t.Clear();
  EXPECT_FALSE(t.ChangesTracked());
}

}  // namespace
}  // namespace mtps::ps
