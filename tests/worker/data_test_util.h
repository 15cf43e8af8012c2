// Helpers shared by the data-path tests: a small job spec, a scratch directory, file
// writing, and reading a pipeline to its end.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "worker/batch.h"
#include "worker/data/batch_pipeline.h"
#include "worker/data/feature_map.h"

#include "tests/common/test_files.h"

namespace mtps::testing_data {

// Two tasks, two dense fields, three sparse fields (tags is multi-valued and shares the
// item table with item).
inline const char* kSpecYaml = R"(
name: data-test
data: {format: csv, train: ["unused"], on_bad_record: stop}
features:
  sparse:
    - {name: user, column: user_id, table: user}
    - {name: item, column: item_id, table: item}
    - {name: tags, table: item, multi_valued: true}
  dense:
    - {name: price, default: -1.5}
    - {name: age, missing: error}
tables:
  - {name: user, dim: 4}
  - {name: item, dim: 4}
model: {type: mmoe}
tasks:
  - {name: ctr, label: click}
  - {name: cvr, label: buy}
)";

inline JobSpec TestSpec(const std::string& yaml = kSpecYaml) {
  StatusOr<JobSpec> spec = ParseJobSpec(yaml, "test spec");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : JobSpec{};
}

using ::mtps::testing::ReadFile;
using ::mtps::testing::ScratchDir;
using ::mtps::testing::WriteFile;

// One record as a batch holds it, comparable across batches.
struct Record {
  std::vector<float> labels, dense;
  std::vector<std::vector<uint64_t>> keys;
  bool operator==(const Record&) const = default;
  bool operator<(const Record& o) const {
    return std::tie(labels, dense, keys) < std::tie(o.labels, o.dense, o.keys);
  }
};

inline std::vector<Record> Records(const Batch& b) {
  std::vector<Record> out(b.size);
  for (int r = 0; r < b.size; ++r) {
    out[r].labels.assign(b.labels.begin() + r * b.num_tasks, b.labels.begin() + (r + 1) * b.num_tasks);
    out[r].dense.assign(b.dense.begin() + r * b.num_dense, b.dense.begin() + (r + 1) * b.num_dense);
    for (const Batch::Field& f : b.fields) {
      out[r].keys.emplace_back(f.keys.begin() + f.offsets[r], f.keys.begin() + f.offsets[r + 1]);
    }
  }
  return out;
}

// Reads the pipeline to its end; fails the test on an error.
inline std::vector<Record> Drain(BatchPipeline* p, std::vector<int>* batch_sizes = nullptr) {
  std::vector<Record> all;
  while (true) {
    StatusOr<Batch*> b = p->Next();
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || *b == nullptr) break;
    if (batch_sizes) batch_sizes->push_back((*b)->size);
    for (Record& r : Records(**b)) all.push_back(std::move(r));
    p->Release(*b);
  }
  return all;
}

}  // namespace mtps::testing_data
