// Tests of the job spec parser: a complete spec parses into the right values, and every
// kind of invalid value is refused with a message that names the field.
#include "protocol/job_spec.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace mtps {
namespace {

const char kFullSpec[] = R"(
name: demo
data:
  format: mtb
  train: [data/train-0.mtb, data/train-1.mtb]
  eval: data/eval.mtb
  oracle: data/oracle.json
  on_bad_record: skip
features:
  sparse:
    - {name: user_id, table: user}
    - {name: recent_items, table: item, multi_valued: true, pooling: mean}
    - {name: item_id, table: item, missing: error}
  dense:
    - price
    - {name: age, column: user_age, default: 30}
tables:
  - name: user
    dim: 16
    optimizer: {type: adagrad, lr: 0.05, initial_accumulator: 0.01}
    capacity_rows: 1000000
    admit_min_count: 2
    ttl_steps: 10000
  - name: item
    dim: 8
    optimizer: {type: ftrl, alpha: 0.1, beta: 1.0, l1: 0.5}
    init: {type: uniform, range: 0.05}
    seed: 42
model:
  type: ple
  expert_units: [64, 32]
  tower_units: [16]
  ple_levels: 3
  ple_shared_experts: 1
  ple_task_experts: 2
tasks:
  - {name: ctr, label: click, loss: bce, weight: 1.0}
  - {name: rating, loss: mse, weight: 0.5}
training:
  batch_size: 512
  epochs: 3
  mode: sync
  task_weighting: uncertainty
  dense_optimizer: {type: adamw, lr: 0.002, weight_decay: 0.01}
checkpoint:
  dir: /tmp/ckpt
  interval_steps: 500
  interval_seconds: 90.5
  full_every: 5
)";

TEST(JobSpecTest, ParsesEveryField) {
  StatusOr<JobSpec> spec = ParseJobSpec(kFullSpec);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "demo");
  EXPECT_EQ(spec->data.train.size(), 2u);
  ASSERT_EQ(spec->data.eval.size(), 1u);
  EXPECT_EQ(spec->data.eval[0], "data/eval.mtb");
  EXPECT_EQ(spec->data.on_bad_record, DataSpec::BadRecordPolicy::kSkip);
  ASSERT_EQ(spec->sparse_fields.size(), 3u);
  EXPECT_EQ(spec->sparse_fields[0].column, "user_id");
  EXPECT_TRUE(spec->sparse_fields[1].multi_valued);
  EXPECT_EQ(spec->sparse_fields[1].pooling, Pooling::kMean);
  EXPECT_EQ(spec->sparse_fields[2].missing, MissingPolicy::kError);
  ASSERT_EQ(spec->dense_fields.size(), 2u);
  EXPECT_EQ(spec->dense_fields[0].name, "price");
  EXPECT_EQ(spec->dense_fields[1].column, "user_age");
  EXPECT_FLOAT_EQ(spec->dense_fields[1].default_value, 30.0f);
  ASSERT_EQ(spec->tables.size(), 2u);
  EXPECT_EQ(spec->tables[0].optimizer.type, OptimizerSpec::Type::kAdagrad);
  EXPECT_FLOAT_EQ(spec->tables[0].optimizer.lr, 0.05f);
  EXPECT_EQ(spec->tables[0].capacity_rows, 1000000u);
  EXPECT_EQ(spec->tables[0].admit_min_count, 2u);
  EXPECT_EQ(spec->tables[1].optimizer.type, OptimizerSpec::Type::kFtrl);
  EXPECT_FLOAT_EQ(spec->tables[1].optimizer.ftrl_l1, 0.5f);
  EXPECT_EQ(spec->tables[1].initializer.type, InitializerSpec::Type::kUniform);
  EXPECT_EQ(spec->tables[1].seed, 42u);
  EXPECT_NE(spec->tables[0].seed, 0u) << "seed defaults to a hash of the name";
  EXPECT_EQ(spec->model.type, ModelSpec::Type::kPle);
  EXPECT_EQ(spec->model.expert_units, (std::vector<int>{64, 32}));
  EXPECT_EQ(spec->model.ple_levels, 3);
  ASSERT_EQ(spec->tasks.size(), 2u);
  EXPECT_EQ(spec->tasks[1].label, "rating") << "label defaults to the task name";
  EXPECT_EQ(spec->tasks[1].loss, TaskSpec::Loss::kMse);
  EXPECT_EQ(spec->training.mode, TrainingSpec::Mode::kSync);
  EXPECT_EQ(spec->training.task_weighting, TrainingSpec::TaskWeighting::kUncertainty);
  EXPECT_EQ(spec->training.dense_optimizer.type, OptimizerSpec::Type::kAdamW);
  EXPECT_EQ(spec->checkpoint.interval_steps, 500u);
  EXPECT_DOUBLE_EQ(spec->checkpoint.interval_seconds, 90.5);
  EXPECT_EQ(spec->checkpoint.full_every, 5);
  EXPECT_EQ(spec->FindTable("item"), &spec->tables[1]);
  EXPECT_EQ(spec->FindTable("shop"), nullptr);
}

TEST(JobSpecTest, HashIgnoresLayoutButNotContent) {
  StatusOr<JobSpec> a = ParseJobSpec(kFullSpec);
  StatusOr<JobSpec> b = ParseJobSpec(std::string("# a comment\n") + kFullSpec + "\n\n");
  std::string changed = kFullSpec;
  changed.replace(changed.find("batch_size: 512"), 15, "batch_size: 256");
  StatusOr<JobSpec> c = ParseJobSpec(changed);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_NE(a->hash, c->hash);
}

// Replaces the first occurrence of `from` in the full spec.
std::string Edit(const std::string& from, const std::string& to) {
  std::string text = kFullSpec;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

struct BadSpecCase {
  std::string from, to;  // edit of the full spec
  std::string expected;  // must appear in the error message
};

void PrintTo(const BadSpecCase& c, std::ostream* os) { *os << "'" << c.from << "' -> '" << c.to << "'"; }

class JobSpecRejects : public ::testing::TestWithParam<BadSpecCase> {};

TEST_P(JobSpecRejects, NamesTheField) {
  const BadSpecCase& c = GetParam();
  StatusOr<JobSpec> spec = ParseJobSpec(Edit(c.from, c.to));
  ASSERT_FALSE(spec.ok()) << "accepted: " << c.to;
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(c.expected), std::string::npos)
      << "message: " << spec.status().message() << "\nexpected to contain: " << c.expected;
}

INSTANTIATE_TEST_SUITE_P(
    BadValues, JobSpecRejects,
    ::testing::Values(
        BadSpecCase{"    dim: 16\n", "", "tables[0].dim: required field is missing"},
        BadSpecCase{"dim: 16", "dim: sixteen", "tables[0].dim: expected an integer, got 'sixteen'"},
        BadSpecCase{"dim: 8", "dim: -4", "tables[1].dim: must be in [1, 4096], got -4"},
        BadSpecCase{"type: ple", "type: transformer", "model.type: unknown value 'transformer'"},
        BadSpecCase{"expert_units: [64, 32]", "expert_units: [64, -32]",
                    "model.expert_units[1]: must be > 0, got -32"},
        BadSpecCase{"batch_size: 512", "batch_size: 0", "training.batch_size: must be > 0"},
        BadSpecCase{"epochs: 3", "epochs: [3]", "training.epochs: expected a scalar value"},
        BadSpecCase{"lr: 0.05", "lr: -0.05", "tables[0].optimizer.lr: must be > 0"},
        BadSpecCase{"type: adagrad", "type: rmsprop", "tables[0].optimizer.type: unknown value 'rmsprop'"},
        BadSpecCase{"loss: mse", "loss: hinge", "tasks[1].loss: unknown value 'hinge'"},
        BadSpecCase{"table: item, multi", "table: shop, multi",
                    "features.sparse[1].table: unknown table 'shop'"},
        BadSpecCase{"capacity_rows: 1000000", "capacity_rows: -1",
                    "tables[0].capacity_rows: must be >= 0, got -1"},
        BadSpecCase{"mode: sync", "mode: eventually", "training.mode: unknown value 'eventually'"},
        BadSpecCase{"epochs: 3", "epochs: 3\n  epoch: 4", "training.epoch: unknown field"},
        BadSpecCase{"- name: item\n", "- name: user\n", "tables[1].name: duplicate table 'user'"},
        BadSpecCase{"weight: 0.5", "weight: -1", "tasks[1].weight: must be >= 0, got -1"},
        BadSpecCase{"type: ple", "type: esmm", "tasks: esmm needs exactly two bce tasks"},
        BadSpecCase{"ple_levels: 3", "ple_levels: 3\n  dropout: 1.5",
                    "model.dropout: must be in [0, 1)"},
        BadSpecCase{"tasks:\n", "tasks: []\nold_tasks:\n", "old_tasks: unknown field"},
        BadSpecCase{"interval_seconds: 90.5", "interval_seconds: -1",
                    "checkpoint.interval_seconds: must be a number of seconds >= 0, got -1"},
        BadSpecCase{"full_every: 5", "full_every: 0",
                    "checkpoint.full_every: must be in [1, 1000] (1 = every checkpoint full, N = "
                    "a full one then N-1 incremental), got 0"},
        BadSpecCase{"full_every: 5", "full_every: 1001",
                    "checkpoint.full_every: must be in [1, 1000]"},
        BadSpecCase{"full_every: 5", "full_every: often",
                    "checkpoint.full_every: expected an integer, got 'often'"}));

TEST(JobSpecTest, RefusesMissingSectionsAndBrokenText) {
  EXPECT_NE(ParseJobSpec("tasks: [}").status().message().find("not valid YAML"), std::string::npos);
  EXPECT_NE(ParseJobSpec("- a\n- b\n").status().message().find("top level must be a mapping"),
            std::string::npos);
  std::string no_model = kFullSpec;
  no_model.erase(no_model.find("model:"), no_model.find("tasks:") - no_model.find("model:"));
  EXPECT_NE(ParseJobSpec(no_model).status().message().find("model: required field is missing"),
            std::string::npos);
  std::string no_tasks = kFullSpec;
  no_tasks.erase(no_tasks.find("tasks:"), no_tasks.find("training:") - no_tasks.find("tasks:"));
  EXPECT_NE(ParseJobSpec(no_tasks).status().message().find("tasks: at least one task"),
            std::string::npos);
}

// YAML allows a sequence or mapping as a key (`? - x`): a clear refusal, not a yaml-cpp
// exception out of the parser (the job_spec fuzzer found it).
TEST(JobSpecTest, RefusesAKeyThatIsNotAName) {
  std::string top = kFullSpec;
  top += "? [a, b]\n: 1\n";
  Status s = ParseJobSpec(top).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("the top level: a key must be a plain name"), std::string::npos) << s;

  std::string nested = kFullSpec;
  nested.replace(nested.find("training:\n"), 10, "training:\n  ? - {name: x}\n  : 2\n");
  s = ParseJobSpec(nested).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("training: a key must be a plain name"), std::string::npos) << s;
}

TEST(JobSpecTest, LoadNamesTheFile) {
  StatusOr<JobSpec> missing = LoadJobSpec("/nonexistent/job.yaml");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/job.yaml"), std::string::npos);

  std::string path = ::testing::TempDir() + "/bad_job.yaml";
  std::ofstream(path) << Edit("dim: 16", "dim: 0");
  StatusOr<JobSpec> bad = LoadJobSpec(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ": tables[0].dim"), std::string::npos)
      << bad.status();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mtps
