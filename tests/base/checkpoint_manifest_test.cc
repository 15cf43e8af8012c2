// The checkpoint manifest's own integrity: version 2 ends with a CRC32C of the rest, so a
// flipped digit (step, id, base, data position) or a truncation is DATA_LOSS, not a state
// no checkpoint held; version 1 manifests (no checksum) written before still read.
#include "base/checkpoint_manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace mtps {
namespace {

class CheckpointManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/manifest_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string Written() {
    const CheckpointManifest m{.id = 12,
                               .step = 3400,
                               .files = {{"/c/server-0.table-user.ckpt", 100, 7, 0},
                                         {"/c/server-0.table-item.ckpt", 50, 9, 11}},
                               .workers = {{0, 1, 250, 3400}}};
    auto fs = NewPosixFileSystem();
    EXPECT_TRUE(WriteCheckpointManifest(*fs, path_, m).ok());
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void Put(const std::string& text) { std::ofstream(path_, std::ios::binary | std::ios::trunc) << text; }

  std::string path_;
};

TEST_F(CheckpointManifestTest, AWrittenManifestReadsBackWithItsChecksumLineLast) {
  const std::string text = Written();
  EXPECT_TRUE(text.starts_with("mtps-checkpoint-manifest 2\n")) << text;
  EXPECT_NE(text.rfind("\ncrc32c "), std::string::npos) << text;
  StatusOr<CheckpointManifest> m = ReadCheckpointManifest(path_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 12u);
  EXPECT_EQ(m->step, 3400u);
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[1].base_id, 11u);
  ASSERT_EQ(m->workers.size(), 1u);
  EXPECT_EQ(m->workers[0].records, 250u);
}

TEST_F(CheckpointManifestTest, AChangedDigitIsRefusedAsDamage) {
  const std::string good = Written();
  for (const std::string field : {"step 3400", "id 12", "increment 11", "worker 0 1 250"}) {
    std::string bad = good;
    const size_t at = bad.find(field);
    ASSERT_NE(at, std::string::npos) << field;
    bad[at + field.size() - 1] ^= 0x01;  // its last digit, to another digit
    Put(bad);
    StatusOr<CheckpointManifest> m = ReadCheckpointManifest(path_);
    ASSERT_EQ(m.status().code(), StatusCode::kDataLoss) << field;
    EXPECT_NE(m.status().message().find("checksum mismatch"), std::string::npos) << m.status();
    EXPECT_NE(m.status().message().find(path_), std::string::npos) << m.status();
  }
}

TEST_F(CheckpointManifestTest, ATruncatedManifestIsRefused) {
  const std::string good = Written();
  for (size_t size = 0; size < good.size(); ++size) {
    Put(good.substr(0, size));
    EXPECT_EQ(ReadCheckpointManifest(path_).status().code(), StatusCode::kDataLoss)
        << "cut to " << size << " of " << good.size() << " bytes";
  }
}

TEST_F(CheckpointManifestTest, AVersionOneManifestReadsAndMayNotCarryAChecksumLine) {
  Put("mtps-checkpoint-manifest 1\nid 4\nstep 40\nfile 10 20 /c/server-0.dense.ckpt\n");
  StatusOr<CheckpointManifest> m = ReadCheckpointManifest(path_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 4u);
  ASSERT_EQ(m->files.size(), 1u);
  // A version 2 manifest with its version digit changed is not read without its check.
  Put("mtps-checkpoint-manifest 1\nid 4\nstep 40\ncrc32c 123\n");
  EXPECT_EQ(ReadCheckpointManifest(path_).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mtps
