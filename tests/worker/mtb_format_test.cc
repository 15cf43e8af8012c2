// Tests of the .mtb writer and reader: round trip, schema binding, and detection of
// truncated and corrupted files, naming file and row group.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "data_test_util.h"
#include "worker/data/mtb_reader.h"
#include "worker/data/mtb_writer.h"

namespace mtps {
namespace {

using testing_data::ReadFile;
using testing_data::ScratchDir;
using testing_data::TestSpec;
using testing_data::WriteFile;
using ::testing::HasSubstr;

class MtbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    map_ = *FeatureMap::Create(TestSpec());
    block_ = ColumnBlock(map_.num_tasks(), map_.num_dense(), map_.num_sparse());
    // Record r: labels (r%2, r%3==0), dense (r, -r), user key r, item key 1000+r, r%4 tags.
    for (int r = 0; r < kRows; ++r) {
      block_.labels.push_back(static_cast<float>(r % 2));
      block_.labels.push_back(r % 3 == 0 ? 1.0f : 0.0f);
      block_.dense.push_back(static_cast<float>(r));
      block_.dense.push_back(static_cast<float>(-r));
      block_.sparse[0].keys.push_back(r);
      block_.sparse[1].keys.push_back(1000 + r);
      for (int t = 0; t < r % 4; ++t) block_.sparse[2].keys.push_back(100000 + r * 10 + t);
      for (auto& s : block_.sparse) s.offsets.push_back(static_cast<uint32_t>(s.keys.size()));
      ++block_.rows;
    }
  }
  std::string Write(const std::string& name, int64_t group_rows = 100) {
    const std::string path = dir_.File(name);
    auto w = MtbWriter::Create(path, MtbSchema::Of(map_), group_rows);
    EXPECT_TRUE(w.ok()) << w.status();
    EXPECT_TRUE((*w)->Append(ColumnView::Of(block_)).ok());
    EXPECT_TRUE((*w)->Close().ok());
    return path;
  }

  static constexpr int kRows = 1050;
  ScratchDir dir_;
  FeatureMap map_;
  ColumnBlock block_;
};

TEST_F(MtbTest, RoundTripsEveryColumnAcrossRowGroups) {
  const std::string path = Write("a.mtb");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto reader = MtbReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->num_row_groups(), 11);  // 10 x 100 + 50
  EXPECT_EQ((*reader)->total_rows(), kRows);
  EXPECT_EQ((*reader)->row_group_rows(10), 50);
  auto binding = (*reader)->Bind(map_);
  ASSERT_TRUE(binding.ok());
  ColumnBlock back(map_.num_tasks(), map_.num_dense(), map_.num_sparse());
  ColumnView view;
  for (int g = 0; g < (*reader)->num_row_groups(); ++g) {
    ASSERT_TRUE((*reader)->ReadRowGroup(g, *binding, &view).ok());
    AppendRows(view, 0, view.rows, &back);
  }
  EXPECT_EQ(back.rows, block_.rows);
  EXPECT_EQ(back.labels, block_.labels);
  EXPECT_EQ(back.dense, block_.dense);
  for (int f = 0; f < 3; ++f) {
    EXPECT_EQ(back.sparse[f].offsets, block_.sparse[f].offsets);
    EXPECT_EQ(back.sparse[f].keys, block_.sparse[f].keys);
  }
}

TEST_F(MtbTest, BindsASubsetInAnotherOrderAndRefusesMissingColumns) {
  const std::string path = Write("a.mtb");
  auto reader = *MtbReader::Open(path);
  JobSpec spec = TestSpec();
  std::swap(spec.tasks[0], spec.tasks[1]);       // cvr first
  spec.dense_fields.erase(spec.dense_fields.begin());  // only age
  spec.sparse_fields.erase(spec.sparse_fields.begin());  // item, tags
  FeatureMap sub = *FeatureMap::Create(spec);
  auto binding = reader->Bind(sub);
  ASSERT_TRUE(binding.ok()) << binding.status();
  ColumnView view;
  ASSERT_TRUE(reader->ReadRowGroup(0, *binding, &view).ok());
  ColumnBlock got(2, 1, 2);
  AppendRows(view, 0, 3, &got);
  EXPECT_EQ(got.labels, (std::vector<float>{1, 0, 0, 1, 0, 0}));  // (buy, click) of records 0..2
  EXPECT_EQ(got.dense, (std::vector<float>{0, -1, -2}));
  EXPECT_EQ(got.sparse[0].keys, (std::vector<uint64_t>{1000, 1001, 1002}));

  JobSpec extra = TestSpec();
  extra.sparse_fields.push_back({.name = "shop", .table = "item"});
  StatusOr<MtbBinding> refused = reader->Bind(*FeatureMap::Create(extra));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(path));
  EXPECT_THAT(refused.status().message(), HasSubstr("'shop', which the file lacks"));
}

TEST_F(MtbTest, FlippedByteInARowGroupIsNamedByItsChecksum) {
  const std::string path = Write("a.mtb");
  std::string bytes = ReadFile(path);
  const uint64_t group3 = (*MtbReader::Open(path))->row_group_offset(3);
  bytes[group3 + kMtbRowGroupHeaderBytes + 37] ^= 0x10;
  WriteFile(path, bytes);
  auto reader = MtbReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();  // the index is intact; the damage shows on read
  auto binding = *(*reader)->Bind(map_);
  ColumnView view;
  for (int g = 0; g < (*reader)->num_row_groups(); ++g) {
    Status s = (*reader)->ReadRowGroup(g, binding, &view);
    if (g != 3) {
      EXPECT_TRUE(s.ok()) << s;
      continue;
    }
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_THAT(s.message(), HasSubstr(path + ": row group 3 of 11"));
    EXPECT_THAT(s.message(), HasSubstr("checksum mismatch"));
  }
}

TEST_F(MtbTest, TruncatedFileIsRefusedNamingTheCutRowGroup) {
  const std::string path = Write("a.mtb");
  const std::string bytes = ReadFile(path);
  // Cut in the middle of row group 5.
  const uint64_t cut = (*MtbReader::Open(path))->row_group_offset(5) + 100;
  WriteFile(path, bytes.substr(0, cut));
  StatusOr<std::unique_ptr<MtbReader>> r = MtbReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr(path + ": truncated"));
  EXPECT_THAT(r.status().message(), HasSubstr("row group 5"));

  // Cut inside the footer: every row group is whole, the index is gone.
  WriteFile(path, bytes.substr(0, bytes.size() - 20));
  r = MtbReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("11 whole row groups precede it"));
}

TEST_F(MtbTest, CorruptFooterHeaderAndVersionAreRefused) {
  const std::string path = Write("a.mtb");
  const std::string bytes = ReadFile(path);
  std::string b = bytes;
  b[b.size() - 16 - 8 - 3] ^= 1;  // inside the footer's total_rows
  WriteFile(path, b);
  EXPECT_THAT(MtbReader::Open(path).status().message(), HasSubstr("footer checksum mismatch"));
  b = bytes;
  b[30] ^= 1;  // inside the schema
  WriteFile(path, b);
  EXPECT_THAT(MtbReader::Open(path).status().message(), HasSubstr("schema) checksum mismatch"));
  b = bytes;
  b[8] = 9;  // version
  WriteFile(path, b);
  EXPECT_EQ(MtbReader::Open(path).status().code(), StatusCode::kVersionMismatch);
  WriteFile(path, "a,b,c\n1,2,3\n");
  EXPECT_THAT(MtbReader::Open(path).status().message(), HasSubstr("not a .mtb file"));
}

TEST_F(MtbTest, UnclosedWriterLeavesNoFile) {
  const std::string path = dir_.File("b.mtb");
  {
    auto w = *MtbWriter::Create(path, MtbSchema::Of(map_), 100);
    ASSERT_TRUE(w->Append(ColumnView::Of(block_)).ok());
    EXPECT_EQ(w->rows_written(), 1000);  // ten whole row groups are on disk, 50 records pending
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

}  // namespace
}  // namespace mtps
