// Tests of the CSV options beyond RFC 4180's defaults: another column delimiter (TSV), the
// header error that says which delimiter split the header and how, and sequence fields
// (key_field hashing, most-recent-last truncation, empty histories).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "worker/data/csv_reader.h"

namespace mtps {
namespace {

using testing_data::ScratchDir;
using testing_data::TestSpec;
using testing_data::WriteFile;
using ::testing::HasSubstr;

class CsvFormatTest : public ::testing::Test {
 protected:
  StatusOr<ColumnBlock> ReadAll(const FeatureMap& map, const std::string& text, char delimiter) {
    WriteFile(Path(), text);
    MTPS_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(Path(), map, DataSpec::BadRecordPolicy::kStop, delimiter));
    ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
    while (true) {
      MTPS_ASSIGN_OR_RETURN(int64_t n, reader->Read(2, &block));
      if (n == 0) break;
    }
    return block;
  }
  std::string Path() const { return dir_.File("in.tsv"); }
  ScratchDir dir_;
};

TEST_F(CsvFormatTest, TabSeparatedFilesReadWithTheTabDelimiter) {
  const FeatureMap map = *FeatureMap::Create(TestSpec());
  const std::string tsv =
      "click\tbuy\tprice\tage\tuser_id\titem_id\ttags\n"
      "1\t0\t2.5\t30\tu,1\ti1\ta|b\n"      // a comma is an ordinary character in TSV
      "0\t1\t\t4\t\"u\t2\"\ti2\tc\n";     // a quoted tab is part of the value
  StatusOr<ColumnBlock> b = ReadAll(map, tsv, '\t');
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->rows, 2);
  EXPECT_EQ(b->labels, (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(b->dense, (std::vector<float>{2.5f, 30, -1.5f, 4}));
  EXPECT_EQ(b->sparse[0].keys, (std::vector<uint64_t>{map.Key(0, "u,1"), map.Key(0, "u\t2")}));
  EXPECT_EQ(b->sparse[2].offsets, (std::vector<uint32_t>{0, 2, 3}));
}

TEST_F(CsvFormatTest, HeaderErrorNamesTheDelimiterAndSuggestsTheOneThatFits) {
  const FeatureMap map = *FeatureMap::Create(TestSpec());
  const std::string tsv = "click\tbuy\tprice\tage\tuser_id\titem_id\ttags\n1\t0\t1\t2\tu\ti\tt\n";
  StatusOr<ColumnBlock> b = ReadAll(map, tsv, ',');
  ASSERT_FALSE(b.ok());
  const std::string& m = b.status().message();
  EXPECT_THAT(m, HasSubstr(Path() + ": the job spec's task 'ctr' needs column 'click'"));
  EXPECT_THAT(m, HasSubstr("split at ',' (data.csv_delimiter) gives 1 column"));
  EXPECT_THAT(m, HasSubstr("\"click\\x09buy"));  // what the header looked like
  EXPECT_THAT(m, HasSubstr("holds 6 tab: set data.csv_delimiter to \"\\t\""));

  // A semicolon file read as TSV says the same about semicolons.
  b = ReadAll(map, "click;buy;price;age;user_id;item_id;tags\n", '\t');
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("split at tab (data.csv_delimiter) gives 1 column"));
  EXPECT_THAT(b.status().message(), HasSubstr("set data.csv_delimiter to ';'"));
}

constexpr const char* kSequenceSpec = R"(
name: seq-test
data: {format: csv, train: ["unused"]}
features:
  sparse:
    - {name: item, table: item}
    - {name: hist_items, table: item, key_field: item, multi_valued: true, pooling: sequence, max_length: 3}
tables:
  - {name: item, dim: 4}
model:
  type: mmoe
  sequence: {field: hist_items, target: item, encoder: sum}
tasks:
  - {name: ctr, label: click}
)";

TEST_F(CsvFormatTest, SequenceFieldsShareTheKeyFieldsKeysAndKeepTheMostRecentValues) {
  const FeatureMap map = *FeatureMap::Create(TestSpec(kSequenceSpec));
  const std::string csv =
      "click,item,hist_items\n"
      "1,i7,i1|i2|i3|i4|i7\n"  // five values: the last three (most recent) stay, in order
      "0,i2,\n"                // no history yet: an empty sequence, not the missing key
      "1,i3,i2\n";
  StatusOr<ColumnBlock> b = ReadAll(map, csv, ',');
  ASSERT_TRUE(b.ok()) << b.status();
  const ColumnBlock::Sparse& hist = b->sparse[1];
  EXPECT_EQ(hist.offsets, (std::vector<uint32_t>{0, 3, 3, 4}));
  EXPECT_EQ(hist.keys,
            (std::vector<uint64_t>{map.Key(0, "i3"), map.Key(0, "i4"), map.Key(0, "i7"), map.Key(0, "i2")}));
  EXPECT_EQ(hist.keys[2], b->sparse[0].keys[0]);  // "i7" in the history is the target's key
  EXPECT_EQ(hist.keys[3], b->sparse[0].keys[1]);  // and "i2" the second record's item
  EXPECT_EQ(map.Key(1, "i3"), map.Key(0, "i3"));
}

}  // namespace
}  // namespace mtps
