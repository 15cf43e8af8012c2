// Tests of the job spec's data-side options of issue 13: the CSV delimiter, the shuffle
// window, sequence fields' key_field and max_length, and training.early_stopping.
#include <gtest/gtest.h>

#include <string>

#include "protocol/job_spec.h"

namespace mtps {
namespace {

const char kSpec[] = R"(
name: data-options
data:
  format: csv
  train: [train.csv]
  csv_delimiter: "\t"
  shuffle_window_rows: 50000
features:
  sparse:
    - {name: item, table: item}
    - {name: hist_items, table: item, key_field: item, multi_valued: true, pooling: sequence, max_length: 20}
tables:
  - {name: item, dim: 8}
model:
  type: mmoe
  sequence: {field: hist_items, target: item, encoder: din}
tasks:
  - {name: ctr, label: click}
  - {name: rating, loss: mse}
training:
  epochs: 10
  early_stopping: {metric: auc, task: ctr, patience: 2, min_delta: 0.0005}
)";

std::string Edit(const std::string& from, const std::string& to) {
  std::string text = kSpec;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(JobSpecDataTest, ParsesTheDataAndEarlyStoppingOptions) {
  StatusOr<JobSpec> spec = ParseJobSpec(kSpec);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->data.csv_delimiter, '\t');
  EXPECT_EQ(spec->data.shuffle_window_rows, 50000);
  EXPECT_EQ(spec->sparse_fields[1].key_field, "item");
  EXPECT_EQ(spec->sparse_fields[1].pooling, Pooling::kSequence);
  EXPECT_EQ(spec->sparse_fields[1].max_length, 20);
  const EarlyStoppingSpec& e = spec->training.early_stopping;
  EXPECT_EQ(e.metric, EarlyStoppingSpec::Metric::kAuc);
  EXPECT_EQ(e.task, "ctr");
  EXPECT_EQ(e.patience, 2);
  EXPECT_DOUBLE_EQ(e.min_delta, 0.0005);

  for (const auto& [text, expected] : std::vector<std::pair<std::string, char>>{
           {"tab", '\t'}, {"semicolon", ';'}, {"comma", ','}, {"\";\"", ';'}}) {
    StatusOr<JobSpec> other = ParseJobSpec(Edit("csv_delimiter: \"\\t\"", "csv_delimiter: " + text));
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(other->data.csv_delimiter, expected) << text;
  }
  // Defaults: comma, a window of 2^20 records, no early stopping.
  StatusOr<JobSpec> plain = ParseJobSpec(Edit("  early_stopping: {metric: auc, task: ctr, patience: 2, min_delta: 0.0005}\n", ""));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->training.early_stopping.patience, 0);
  EXPECT_EQ(plain->training.early_stopping.task, "mean");
  EXPECT_EQ(JobSpec{}.data.csv_delimiter, ',');
  EXPECT_EQ(JobSpec{}.data.shuffle_window_rows, int64_t{1} << 20);
}

struct Bad {
  std::string from, to, expected;
};

class JobSpecDataRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(JobSpecDataRejects, NamesTheField) {
  const Bad& c = GetParam();
  StatusOr<JobSpec> spec = ParseJobSpec(Edit(c.from, c.to));
  ASSERT_FALSE(spec.ok()) << "accepted: " << c.to;
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(c.expected), std::string::npos)
      << "message: " << spec.status().message() << "\nexpected: " << c.expected;
}

INSTANTIATE_TEST_SUITE_P(
    BadValues, JobSpecDataRejects,
    ::testing::Values(
        Bad{"csv_delimiter: \"\\t\"", "csv_delimiter: \"|\"", "data.csv_delimiter: '|' cannot separate columns"},
        Bad{"csv_delimiter: \"\\t\"", "csv_delimiter: tabs", "data.csv_delimiter: expected one character"},
        Bad{"shuffle_window_rows: 50000", "shuffle_window_rows: 0", "data.shuffle_window_rows: must be > 0"},
        Bad{"key_field: item", "key_field: shop", "features.sparse[1].key_field: no sparse feature 'shop'"},
        Bad{"multi_valued: true, pooling", "multi_valued: false, pooling",
            "features.sparse[1].multi_valued: pooling sequence reads a '|' list"},
        Bad{"{name: item, table: item}", "{name: item, table: item, max_length: 3}",
            "features.sparse[0].max_length: only a field with pooling: sequence"},
        Bad{"patience: 2", "patience: 0", "training.early_stopping.patience: must be > 0"},
        Bad{"early_stopping: {metric: auc, task: ctr, ", "early_stopping: {metric: auc, task: ctr, patienc: 1, ",
            "training.early_stopping.patienc: unknown field"},
        Bad{"metric: auc", "metric: logloss", "training.early_stopping.metric: unknown value 'logloss'"},
        Bad{"task: ctr", "task: rating", "training.early_stopping.task: 'rating' is an mse task"},
        Bad{"task: ctr", "task: cvr", "training.early_stopping.task: no task 'cvr'"},
        Bad{"min_delta: 0.0005", "min_delta: -1", "training.early_stopping.min_delta: must be >= 0"}));

TEST(JobSpecDataTest, KeyFieldMustShareTheTable) {
  std::string text = kSpec;
  text.replace(text.find("  - {name: item, dim: 8}"), 24, "  - {name: item, dim: 8}\n  - {name: other, dim: 8}");
  text.replace(text.find("{name: item, table: item}"), 25, "{name: item, table: other}");
  StatusOr<JobSpec> spec = ParseJobSpec(text);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("features.sparse[1].key_field: 'item' reads table 'other'"),
            std::string::npos)
      << spec.status().message();
}

}  // namespace
}  // namespace mtps
