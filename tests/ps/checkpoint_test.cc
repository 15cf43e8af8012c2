// Checkpoints: bit-exact round trips (tables across shard counts, dense blocks); every
// flipped byte and every truncation detected and named, the serving table untouched;
// files of another spec refused; failed writes, syncs and renames leave no file behind.
#include "ps/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <vector>

namespace mtps::ps {
namespace {

namespace fs = std::filesystem;

TableSpec MakeSpec() {
  TableSpec spec;
  spec.name = "user";
  spec.dim = 6;
  spec.optimizer.type = OptimizerSpec::Type::kAdam;
  spec.seed = 5;
  return spec;
}

struct RowCopy {
  std::vector<float> values;
  RowMeta meta;
  bool operator==(const RowCopy&) const = default;
};

std::map<uint64_t, RowCopy> AllRows(ShardedTables& tables) {
  std::map<uint64_t, RowCopy> rows;
  EXPECT_TRUE(tables
                  .ForEachShard(0,
                                [&](int, EmbeddingTable& t) {
                                  t.ForEachRow([&](uint64_t key, const float* v, const RowMeta& m) {
                                    rows[key] = {std::vector<float>(v, v + t.values_per_row()), m};
                                  });
                                })
                  .ok());
  return rows;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mtps_ckpt_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(fs_->CreateDirs(dir_).ok());
    path_ = TableCheckpointPath(dir_, 0, "user");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A table with a few thousand trained rows (values, state and metadata all non-trivial).
  std::unique_ptr<ShardedTables> TrainedTables(int shards, int rows = 3000) {
    auto tables = ShardedTables::Create({MakeSpec()}, shards);
    EXPECT_TRUE(tables.ok());
    std::mt19937_64 rng(2);
    for (int step = 0; step < 5; ++step) {
      std::vector<uint64_t> keys(rows);
      for (auto& k : keys) k = rng() % (rows * 2);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      std::vector<float> out(keys.size() * 6), grads(keys.size() * 6);
      for (auto& g : grads) g = std::uniform_real_distribution<float>(-1, 1)(rng);
      EXPECT_TRUE((*tables)->Pull(0, keys.data(), keys.size(), out.data(), step, true).ok());
      EXPECT_TRUE((*tables)->Push(0, keys.data(), grads.data(), keys.size(), step).ok());
    }
    return std::move(tables).value();
  }

  std::string ReadAll() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteAll(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  std::unique_ptr<FileSystem> fs_ = NewPosixFileSystem();
  std::string dir_;
  std::string path_;
};

TEST_F(CheckpointTest, TableRoundTripIsBitExactAcrossShardCounts) {
  auto source = TrainedTables(3);
  auto info = SaveTableCheckpoint(*fs_, path_, *source, 0);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->path, path_);
  EXPECT_EQ(info->bytes, fs::file_size(path_));
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));

  auto target = ShardedTables::Create({MakeSpec()}, 2);
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(LoadTableCheckpoint(*fs_, path_, **target, 0).ok());
  const auto want = AllRows(*source);
  EXPECT_GT(want.size(), 2000u);
  EXPECT_TRUE(AllRows(**target) == want);
  // The restored table trains on exactly as the original does.
  std::vector<uint64_t> keys = {want.begin()->first};
  std::vector<float> g(6, 0.3f);
  ASSERT_TRUE(source->Push(0, keys.data(), g.data(), 1, 9).ok());
  ASSERT_TRUE((*target)->Push(0, keys.data(), g.data(), 1, 9).ok());
  EXPECT_TRUE(AllRows(**target) == AllRows(*source));
}

TEST_F(CheckpointTest, EveryFlippedByteIsDetectedAndNothingIsLoaded) {
  auto source = TrainedTables(2, 1500);
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, path_, *source, 0).ok());
  const std::string good = ReadAll();
  auto target = TrainedTables(2, 200);
  const auto before = AllRows(*target);
  // Every byte of the header, of a block header and of the footer, and a sample of the
  // payload.
  std::vector<size_t> offsets;
  for (size_t i = 0; i < 90 && i < good.size(); ++i) offsets.push_back(i);
  for (size_t i = good.size() - 20; i < good.size(); ++i) offsets.push_back(i);
  for (size_t i = 90; i < good.size() - 20; i += 4999) offsets.push_back(i);
  for (size_t off : offsets) {
    std::string bad = good;
    bad[off] ^= 0x10;
    WriteAll(bad);
    Status s = LoadTableCheckpoint(*fs_, path_, *target, 0);
    ASSERT_FALSE(s.ok()) << "flip at " << off << " went unnoticed";
    EXPECT_NE(s.message().find(path_), std::string::npos) << s;
  }
  // A flip inside a block's payload names the block and says why.
  std::string bad = good;
  bad[good.size() / 2] ^= 1;
  WriteAll(bad);
  Status s = LoadTableCheckpoint(*fs_, path_, *target, 0);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos) << s;
  EXPECT_NE(s.message().find("block "), std::string::npos) << s;
  EXPECT_TRUE(AllRows(*target) == before);
}

TEST_F(CheckpointTest, EveryTruncationIsDetected) {
  auto source = TrainedTables(2, 300);
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, path_, *source, 0).ok());
  const std::string good = ReadAll();
  // Every length through the header and the first block header, the last 40, and a
  // sample in between (the plain loader: the same code the sharded load runs).
  for (size_t len = 0; len < good.size(); len += (len < 90 || len > good.size() - 40) ? 1 : 397) {
    WriteAll(good.substr(0, len));
    auto parts = LoadTableParts(*fs_, path_, MakeSpec(), 1);
    ASSERT_FALSE(parts.ok()) << "truncation to " << len << " bytes went unnoticed";
    EXPECT_EQ(parts.status().code(), StatusCode::kDataLoss) << parts.status();
    EXPECT_NE(parts.status().message().find("truncated"), std::string::npos)
        << len << ": " << parts.status();
  }
  auto target = ShardedTables::Create({MakeSpec()}, 1);
  ASSERT_TRUE(target.ok());
  WriteAll(good.substr(0, good.size() - 1));
  EXPECT_EQ(LoadTableCheckpoint(*fs_, path_, **target, 0).code(), StatusCode::kDataLoss);
  EXPECT_EQ((*target)->Counters(0)->rows, 0u);
  WriteAll(good + "x");
  EXPECT_NE(LoadTableCheckpoint(*fs_, path_, **target, 0).message().find("after the footer"),
            std::string::npos);
}

TEST_F(CheckpointTest, AFileOfAnotherTableSpecIsRefusedNamingTheDifference) {
  auto source = TrainedTables(1, 100);
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, path_, *source, 0).ok());
  TableSpec other = MakeSpec();
  other.dim = 8;
  auto target = ShardedTables::Create({other}, 1);
  Status s = LoadTableCheckpoint(*fs_, path_, **target, 0);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("dim is 6 in the file, 8 in table 'user'"), std::string::npos) << s;
  other = MakeSpec();
  other.optimizer.type = OptimizerSpec::Type::kAdagrad;
  target = ShardedTables::Create({other}, 1);
  s = LoadTableCheckpoint(*fs_, path_, **target, 0);
  EXPECT_NE(s.message().find("optimizer is adam in the file, adagrad"), std::string::npos) << s;
  // A dense file is not a table file.
  DenseBlockStore dense(MakeSpec().optimizer);
  ASSERT_TRUE(SaveDenseCheckpoint(*fs_, DenseCheckpointPath(dir_, 0), dense).ok());
  s = LoadTableCheckpoint(*fs_, DenseCheckpointPath(dir_, 0), **target, 0);
  EXPECT_NE(s.message().find("bad magic"), std::string::npos) << s;
  s = LoadTableCheckpoint(*fs_, dir_ + "/missing.ckpt", **target, 0);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

TEST_F(CheckpointTest, DenseRoundTripIsBitExact) {
  OptimizerSpec adam;
  adam.type = OptimizerSpec::Type::kAdam;
  DenseBlockStore store(adam);
  std::mt19937 rng(4);
  for (uint32_t id : {0u, 3u, 17u}) {
    std::vector<float> v(100 + id);
    for (auto& x : v) x = std::normal_distribution<float>()(rng);
    ASSERT_TRUE(store.Init(id, "block" + std::to_string(id), v.data(), v.size()).ok());
    for (auto& x : v) x *= 0.1f;
    ASSERT_TRUE(store.Push(id, v.data(), v.size()).ok());
  }
  const std::string path = DenseCheckpointPath(dir_, 1);
  ASSERT_TRUE(SaveDenseCheckpoint(*fs_, path, store).ok());
  DenseBlockStore loaded(adam);
  ASSERT_TRUE(LoadDenseCheckpoint(*fs_, path, loaded).ok());
  const auto a = store.Snapshot(), b = loaded.Snapshot();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].update_count, b[i].update_count);
    EXPECT_EQ(a[i].values, b[i].values);
    EXPECT_EQ(a[i].state, b[i].state);
  }
  OptimizerSpec sgd;
  sgd.type = OptimizerSpec::Type::kSgd;
  DenseBlockStore wrong(sgd);
  EXPECT_EQ(LoadDenseCheckpoint(*fs_, path, wrong).code(), StatusCode::kFailedPrecondition);
}

// Fails the n-th call of one kind of operation; everything else goes to the real disk.
class FaultyFileSystem : public FileSystem {
 public:
  enum class Fault { kNone, kAppend, kSync, kRename, kSyncDir };
  FaultyFileSystem(Fault fault, int fail_at) : fault_(fault), fail_at_(fail_at) {}

  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    auto file = real_->NewWritableFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new File(this, std::move(file).value()));
  }
  StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    return real_->NewReadableFile(path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (Hit(Fault::kRename)) return Unavailable("injected rename failure");
    return real_->Rename(from, to);
  }
  Status SyncDir(const std::string& dir) override {
    if (Hit(Fault::kSyncDir)) return Unavailable("injected directory fsync failure");
    return real_->SyncDir(dir);
  }
  Status Remove(const std::string& path) override { return real_->Remove(path); }
  Status CreateDirs(const std::string& dir) override { return real_->CreateDirs(dir); }

 private:
  class File : public WritableFile {
   public:
    File(FaultyFileSystem* fs, std::unique_ptr<WritableFile> real) : fs_(fs), real_(std::move(real)) {}
    Status Append(const void* d, size_t n) override {
      if (fs_->Hit(Fault::kAppend)) return Unavailable("injected write failure (disk full)");
      return real_->Append(d, n);
    }
    Status Sync() override {
      if (fs_->Hit(Fault::kSync)) return Unavailable("injected fsync failure");
      return real_->Sync();
    }
    Status Close() override { return real_->Close(); }

   private:
    FaultyFileSystem* fs_;
    std::unique_ptr<WritableFile> real_;
  };
  bool Hit(Fault kind) { return kind == fault_ && ++calls_ == fail_at_; }

  std::unique_ptr<FileSystem> real_ = NewPosixFileSystem();
  Fault fault_;
  int fail_at_;
  int calls_ = 0;
};

TEST_F(CheckpointTest, FailedWritesSyncsAndRenamesKeepTheOldCheckpointWhole) {
  auto old_tables = TrainedTables(1, 100);
  ASSERT_TRUE(SaveTableCheckpoint(*fs_, path_, *old_tables, 0).ok());
  const std::string old_bytes = ReadAll();
  auto source = TrainedTables(2, 2000);
  using Fault = FaultyFileSystem::Fault;
  for (auto [fault, at] : {std::pair{Fault::kAppend, 1}, std::pair{Fault::kAppend, 3},
                           std::pair{Fault::kSync, 1}, std::pair{Fault::kRename, 1}}) {
    FaultyFileSystem faulty(fault, at);
    auto info = SaveTableCheckpoint(faulty, path_, *source, 0);
    ASSERT_FALSE(info.ok()) << "fault " << int(fault) << " at " << at;
    EXPECT_NE(info.status().message().find("injected"), std::string::npos) << info.status();
    EXPECT_NE(info.status().message().find(path_), std::string::npos) << info.status();
    EXPECT_EQ(ReadAll(), old_bytes);  // the previous checkpoint is untouched
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
  }
  // A failed directory fsync is reported too (the rename may or may not have survived).
  FaultyFileSystem faulty(Fault::kSyncDir, 1);
  EXPECT_FALSE(SaveTableCheckpoint(faulty, path_, *source, 0).ok());
}

}  // namespace
}  // namespace mtps::ps
