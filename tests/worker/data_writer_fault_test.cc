// The data writers on a failing disk (an Env whose file system injects faults): a .mtb file
// or a generated data set is whole or absent, and the error names what failed where.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "data_test_util.h"
#include "tests/common/faulty_file_system.h"
#include "worker/data/datagen.h"
#include "worker/data/mtb_reader.h"
#include "worker/data/mtb_writer.h"

namespace mtps {
namespace {

using ::mtps::testing::FaultyFileSystem;
using testing_data::ReadFile;
using testing_data::ScratchDir;
using testing_data::TestSpec;
using testing_data::WriteFile;
using ::testing::HasSubstr;
using Op = FaultyFileSystem::Op;

ColumnBlock Records(const FeatureMap& map, int rows) {
  ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
  for (int r = 0; r < rows; ++r) {
    for (int t = 0; t < map.num_tasks(); ++t) block.labels.push_back(static_cast<float>(r % 2));
    for (int d = 0; d < map.num_dense(); ++d) block.dense.push_back(static_cast<float>(r));
    for (auto& s : block.sparse) {
      s.keys.push_back(static_cast<uint64_t>(r));
      s.offsets.push_back(static_cast<uint32_t>(s.keys.size()));
    }
    ++block.rows;
  }
  return block;
}

TEST(DataWriterFaultTest, AnMtbFileWhoseDiskFailsKeepsThePreviousFile) {
  ScratchDir dir;
  const std::string path = dir.File("a.mtb");
  const FeatureMap map = *FeatureMap::Create(TestSpec());
  const ColumnBlock block = Records(map, 500);
  WriteFile(path, "the previous file\n");
  for (Op op : {Op::kAppend, Op::kSync, Op::kRename}) {
    SCOPED_TRACE(static_cast<int>(op));
    FaultyFileSystem disk;
    disk.FailAt(op, op == Op::kAppend ? 3 : 1);  // a write: in the middle of the row groups
    Status s;
    {
      auto writer = MtbWriter::Create(path, MtbSchema::Of(map), 100, Env{.fs = &disk});
      ASSERT_TRUE(writer.ok()) << writer.status();
      s = (*writer)->Append(ColumnView::Of(block));
      if (s.ok()) s = (*writer)->Close();
    }
    EXPECT_THAT(s.message(), HasSubstr("injected"));
    EXPECT_THAT(s.message(), HasSubstr(path));
    EXPECT_EQ(ReadFile(path), "the previous file\n");
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  // The same writer on a healthy disk replaces it with a whole file.
  FaultyFileSystem healthy;
  auto writer = MtbWriter::Create(path, MtbSchema::Of(map), 100, Env{.fs = &healthy});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(ColumnView::Of(block)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  auto reader = MtbReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->total_rows(), 500);
}

TEST(DataWriterFaultTest, AGeneratedDataSetWithoutRoomHasNoJobSpec) {
  ScratchDir dir;
  FaultyFileSystem disk;
  disk.FailAt(Op::kRename, 1, "job.yaml");
  DatagenOptions o;
  o.out_dir = dir.path();
  o.rows = 2000;
  o.world.users = 200;
  o.world.items = 300;
  o.world.categories = 10;
  o.world.shops = 20;
  o.format = DataSpec::Format::kCsv;
  o.env = Env{.fs = &disk};
  StatusOr<DatagenReport> report = GenerateDataset(o);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("injected rename failure"));
  EXPECT_THAT(report.status().message(), HasSubstr("job.yaml"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("job.yaml")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("job.yaml.tmp")));
  // Every data file went through the injected disk and is whole.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  }
  disk.Heal();
  ASSERT_TRUE(GenerateDataset(o).ok());
  EXPECT_TRUE(std::filesystem::exists(dir.File("job.yaml")));
}

}  // namespace
}  // namespace mtps
