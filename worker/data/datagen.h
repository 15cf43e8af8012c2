// GenerateDataset: writes a synthetic e-commerce data set (EcommerceWorld) — several train
// files, one eval file, `oracle.json` with the best achievable metrics, and `job.yaml`, a
// complete job spec (MMoE; tasks ctr and cvr, optionally rating) that trains on it.
//
//   DatagenOptions opt;  opt.out_dir = "/data/shop";  opt.rows = 200000;  opt.world.seed = 7;
//   MTPS_ASSIGN_OR_RETURN(DatagenReport r, GenerateDataset(opt));
//   LOG(INFO) << "oracle AUC ctr " << r.ctr.oracle_auc << ", cvr " << r.cvr.oracle_auc;
//
// Rows are pure functions of (seed, row index), so the output does not depend on the
// number of threads, and .mtb and CSV output hold the same records. Memory is bounded by
// the world, one row group per thread, and the eval split's true probabilities (for the
// exact oracle AUC: 16 bytes per eval row). The cvr task's label is `purchase` = click AND
// buy, predicted over all impressions (CTCVR). With world.history_length > 0 (the sequence
// world), records also carry hist_items, the impression's behaviour history (most recent
// last, hashed as item_id), and job.yaml encodes it with DIN and the dot interaction.
// Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/env.h"
#include "base/status.h"
#include "worker/data/column_block.h"
#include "worker/data/ecommerce_world.h"
#include "worker/data/feature_map.h"

namespace mtps {

struct DatagenOptions {
  std::string out_dir;
  int64_t rows = 200000;  // train + eval
  WorldOptions world;
  double eval_fraction = 0.1;
  int train_files = 4;
  DataSpec::Format format = DataSpec::Format::kMtb;
  bool rating = false;  // adds the rating column and an mse task
  int64_t row_group_rows = 16384;
  int threads = 2;
  Env env;  // every file goes through env.fs, atomically (whole or absent)
};

struct TaskOracle {
  std::string task, label;
  double positive_rate = 0;   // bce tasks, eval split
  double oracle_auc = 0;      // bce: AUC of the true probabilities on the eval split
  double oracle_logloss = 0;  // bce: log loss of the true probabilities
  double oracle_mse = 0;      // mse: of the true expected value
};

struct DatagenReport {
  int64_t train_rows = 0, eval_rows = 0;
  std::vector<std::string> train_files, eval_files;
  TaskOracle ctr, cvr, rating;
  double train_ctr = 0, train_conversion = 0;  // empirical P(click), P(purchase | click)
  double eval_ctr = 0, eval_conversion = 0;
};

// The job spec (YAML) of a data set generated with `options`; its data paths are absolute.
std::string GeneratedJobYaml(const DatagenOptions& options);

// Turns impressions into records of the generated job spec (CSV text or columns).
// Thread-safety: immutable; use from any thread.
class ImpressionEncoder {
 public:
  ImpressionEncoder(const FeatureMap& map, bool rating, bool sequence = false)
      : map_(map), rating_(rating), sequence_(sequence) {}
  std::string CsvHeader() const;
  void AppendCsv(const Impression& imp, std::string* out) const;
  void Append(const Impression& imp, ColumnBlock* block) const;

 private:
  const FeatureMap& map_;
  bool rating_;
  bool sequence_;  // the hist_items column of the sequence world
};

StatusOr<DatagenReport> GenerateDataset(const DatagenOptions& options);

}  // namespace mtps
