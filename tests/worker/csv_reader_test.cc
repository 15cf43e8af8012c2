// Tests of CsvReader and the feature mapping: RFC 4180 quoting, multi-values, missing
// values, and every kind of bad record reported with file and line (stop and skip).
#include "worker/data/csv_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data_test_util.h"

namespace mtps {
namespace {

using testing_data::ScratchDir;
using testing_data::TestSpec;
using testing_data::WriteFile;
using ::testing::HasSubstr;

class CsvReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = TestSpec();
    map_ = *FeatureMap::Create(spec_);
  }
  // Reads the whole file; returns the error or the block.
  StatusOr<ColumnBlock> ReadAll(const std::string& text, DataSpec::BadRecordPolicy policy,
                                int64_t* bad = nullptr, std::string* first_bad = nullptr) {
    const std::string path = dir_.File("in.csv");
    WriteFile(path, text);
    MTPS_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path, map_, policy));
    ColumnBlock block(map_.num_tasks(), map_.num_dense(), map_.num_sparse());
    while (true) {
      MTPS_ASSIGN_OR_RETURN(int64_t n, reader->Read(2, &block));  // small reads cross records
      if (n == 0) break;
    }
    if (bad) *bad = reader->bad_records();
    if (first_bad) *first_bad = reader->first_bad_record();
    return block;
  }
  std::string Path() const { return dir_.File("in.csv"); }

  ScratchDir dir_;
  JobSpec spec_;
  FeatureMap map_;
};

constexpr const char* kHeader = "click,buy,price,age,user_id,item_id,tags\n";

TEST_F(CsvReaderTest, ParsesValuesQuotesAndMultiValues) {
  const std::string text = std::string(kHeader) +
                           "1,0,2.5,30,u1,i1,a|b|c\n"
                           "0,0,,+4,\"u,2\",\"i\"\"2\",\"x\ny\"\r\n"  // quoted comma, escaped quote, newline
                           "1,1,1e-3,5,u1,i1,";                      // last line without line end
  StatusOr<ColumnBlock> b = ReadAll(text, DataSpec::BadRecordPolicy::kStop);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->rows, 3);
  EXPECT_EQ(b->labels, (std::vector<float>{1, 0, 0, 0, 1, 1}));
  EXPECT_EQ(b->dense, (std::vector<float>{2.5f, 30, -1.5f, 4, 1e-3f, 5}));  // empty price: its default
  const auto& user = b->sparse[0];
  EXPECT_EQ(user.keys, (std::vector<uint64_t>{map_.Key(0, "u1"), map_.Key(0, "u,2"), map_.Key(0, "u1")}));
  EXPECT_EQ(b->sparse[1].keys[1], map_.Key(1, "i\"2"));
  const auto& tags = b->sparse[2];
  EXPECT_EQ(tags.offsets, (std::vector<uint32_t>{0, 3, 4, 5}));
  EXPECT_EQ(tags.keys[0], map_.Key(2, "a"));
  EXPECT_EQ(tags.keys[3], map_.Key(2, "x\ny"));  // a quoted newline is part of the value
  EXPECT_EQ(tags.keys[4], map_.sparse(2).missing_key);  // empty multi-valued cell: missing
}

TEST_F(CsvReaderTest, KeysDependOnTheFieldAndMissingKeysAreTheirOwn) {
  EXPECT_NE(map_.Key(1, "7"), map_.Key(2, "7"));  // item and tags share a table, not keys
  EXPECT_EQ(map_.Key(1, "7"), FeatureKey(FieldSeed("item"), "7"));
  EXPECT_NE(map_.sparse(0).missing_key, map_.sparse(1).missing_key);
  EXPECT_NE(map_.sparse(0).missing_key, map_.Key(0, ""));
  EXPECT_EQ(map_.sparse(2).table_index, 1);
}

TEST_F(CsvReaderTest, RefusesASpecColumnTheHeaderLacks) {
  WriteFile(Path(), "click,buy,price,age,user_id,tags\n1,0,1,1,u,t\n");
  StatusOr<std::unique_ptr<CsvReader>> r = CsvReader::Open(Path(), map_, DataSpec::BadRecordPolicy::kStop);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(Path()));
  EXPECT_THAT(r.status().message(), HasSubstr("'item_id'"));
  EXPECT_THAT(r.status().message(), HasSubstr("sparse field 'item'"));
}

TEST_F(CsvReaderTest, RefusesDuplicateHeaderColumnsAndEmptyFiles) {
  WriteFile(Path(), "click,buy,price,age,user_id,item_id,tags,click\n");
  EXPECT_THAT(CsvReader::Open(Path(), map_, DataSpec::BadRecordPolicy::kStop).status().message(),
              HasSubstr("'click' twice"));
  WriteFile(Path(), "");
  EXPECT_THAT(CsvReader::Open(Path(), map_, DataSpec::BadRecordPolicy::kStop).status().message(),
              HasSubstr("empty file"));
  EXPECT_EQ(CsvReader::Open(dir_.File("absent.csv"), map_, DataSpec::BadRecordPolicy::kStop).status().code(),
            StatusCode::kNotFound);
}

struct BadCase {
  const char* name;
  const char* record;
  const char* reason;
};

class BadRecordTest : public CsvReaderTest, public ::testing::WithParamInterface<BadCase> {};

// Line 2 is good, line 3 is bad, line 4 is good: stop names line 3; skip keeps 2 records.
TEST_P(BadRecordTest, StopNamesFileAndLineSkipCounts) {
  const BadCase& c = GetParam();
  const std::string text = std::string(kHeader) + "1,0,1,2,u,i,t\n" + c.record + "\n0,1,3,4,u,i,t\n";
  StatusOr<ColumnBlock> stop = ReadAll(text, DataSpec::BadRecordPolicy::kStop);
  ASSERT_FALSE(stop.ok());
  EXPECT_EQ(stop.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(stop.status().message(), HasSubstr(Path() + ":3: "));
  EXPECT_THAT(stop.status().message(), HasSubstr(c.reason));

  int64_t bad = 0;
  std::string first;
  StatusOr<ColumnBlock> skip = ReadAll(text, DataSpec::BadRecordPolicy::kSkip, &bad, &first);
  ASSERT_TRUE(skip.ok()) << skip.status();
  EXPECT_EQ(skip->rows, 2);
  EXPECT_EQ(bad, 1);
  EXPECT_THAT(first, HasSubstr(Path() + ":3: "));
  EXPECT_EQ(skip->labels, (std::vector<float>{1, 0, 0, 1}));  // the bad record left nothing behind
  EXPECT_EQ(skip->dense, (std::vector<float>{1, 2, 3, 4}));
  for (const auto& s : skip->sparse) EXPECT_EQ(s.keys.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, BadRecordTest,
    ::testing::Values(BadCase{"TooFewColumns", "1,0,1,2,u,i", "wrong number of columns: expected 7, got 6"},
                      BadCase{"TooManyColumns", "1,0,1,2,u,i,t,x", "expected 7, got 8"},
                      BadCase{"NonNumericLabel", "yes,0,1,2,u,i,t", "label 'click' of task 'ctr' is not a finite number: \"yes\""},
                      BadCase{"MissingLabel", "1,,1,2,u,i,t", "label 'buy'"},
                      BadCase{"NaNLabel", "nan,0,1,2,u,i,t", "not a finite number"},
                      BadCase{"BceLabelTwo", "2,0,1,2,u,i,t", "label 'click' of bce task 'ctr' must be 0 or 1, got 2"},
                      BadCase{"BceLabelHalf", "1,0.5,1,2,u,i,t", "label 'buy' of bce task 'cvr' must be 0 or 1, got 0.5"},
                      BadCase{"BceLabelNegative", "-1,0,1,2,u,i,t", "must be 0 or 1, got -1"},
                      BadCase{"BadFloat", "1,0,1.2.3,2,u,i,t", "dense field 'price': bad float \"1.2.3\""},
                      BadCase{"InfiniteFloat", "1,0,inf,2,u,i,t", "bad float \"inf\""},
                      BadCase{"MissingValueUnderError", "1,0,1,,u,i,t", "dense field 'age': missing value"},
                      BadCase{"UnparsableIdBlank", "1,0,1,2, u,i,t", "sparse field 'user': unparsable id \" u\""},
                      BadCase{"UnparsableIdControl", "1,0,1,2,u\x01,i,t", "unparsable id \"u\\x01\": control character"},
                      BadCase{"UnparsableIdEmptyListItem", "1,0,1,2,u,i,a||b", "empty value in a multi-valued list"},
                      BadCase{"StrayQuote", "1,0,1,2,u\"x,i,t", "quote inside an unquoted field"},
                      BadCase{"TextAfterClosingQuote", "1,0,1,2,\"u\"x,i,t", "after a closing quote"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST_F(CsvReaderTest, LineNumbersCountQuotedNewlinesAndUnterminatedQuotesAreBad) {
  const std::string text = std::string(kHeader) + "1,0,1,2,u,i,\"a\nb\nc\"\n" + "1,0,x,2,u,i,t\n";
  StatusOr<ColumnBlock> r = ReadAll(text, DataSpec::BadRecordPolicy::kStop);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(Path() + ":5: "));  // record 2 starts on line 5

  StatusOr<ColumnBlock> open_quote =
      ReadAll(std::string(kHeader) + "1,0,1,2,u,i,t\n1,0,1,2,\"u,i,t\n", DataSpec::BadRecordPolicy::kStop);
  ASSERT_FALSE(open_quote.ok());
  EXPECT_THAT(open_quote.status().message(), HasSubstr(Path() + ":3: unterminated quoted field"));
}

TEST_F(CsvReaderTest, MissingSparseValueUnderErrorIsBad) {
  JobSpec spec = TestSpec(std::string(testing_data::kSpecYaml) + "\n");
  spec.sparse_fields[0].missing = MissingPolicy::kError;
  FeatureMap map = *FeatureMap::Create(spec);
  WriteFile(Path(), std::string(kHeader) + "1,0,1,2,,i,t\n");
  auto reader = CsvReader::Open(Path(), map, DataSpec::BadRecordPolicy::kStop);
  ASSERT_TRUE(reader.ok());
  ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
  StatusOr<int64_t> n = (*reader)->Read(10, &block);
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(n.status().message(), HasSubstr(Path() + ":2: sparse field 'user': missing value"));
}

TEST_F(CsvReaderTest, LongRecordsGrowTheBuffer) {
  std::string tags;
  for (int i = 0; i < 300000; ++i) tags += (i ? "|" : "") + std::to_string(i);  // ~2 MB cell
  StatusOr<ColumnBlock> b = ReadAll(std::string(kHeader) + "1,0,1,2,u,i," + tags + "\n", DataSpec::BadRecordPolicy::kStop);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->sparse[2].keys.size(), 300000u);
  EXPECT_EQ(b->sparse[2].keys.back(), map_.Key(2, "299999"));
}

}  // namespace
}  // namespace mtps
