// TrainingData: the input of one job as a trainer sees it — the feature map, the expanded
// train and eval file lists, and a BatchSource per epoch for a worker's shard.
//
//   MTPS_ASSIGN_OR_RETURN(auto data, TrainingData::Open(spec));
//   for (int e = 0; e < spec.training.epochs; ++e) {
//     MTPS_ASSIGN_OR_RETURN(auto source, data->TrainEpoch(e, rank, workers, max_batches));
//     MTPS_RETURN_IF_ERROR(trainer->TrainEpoch(source.get(), on_step));
//   }
//   MTPS_ASSIGN_OR_RETURN(auto eval, data->Eval(0, 1));   // the whole eval split
//
// Synchronous training with several workers needs the same number of steps on every
// worker (the servers wait for all of step t): SyncStepsPerEpoch() gives the smallest
// shard's batch count, computed from the .mtb row-group sizes that every worker can read.
// Thread-safety: immutable after Open(); sources are used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/batch_source.h"
#include "worker/data/batch_pipeline.h"
#include "worker/data/feature_map.h"
#include "worker/data/input_index.h"

namespace mtps {

class TrainingData {
 public:
  static StatusOr<std::unique_ptr<TrainingData>> Open(const JobSpec& spec);

  // The batches of epoch `epoch` for worker `rank` of `num_workers`; at most
  // `max_batches` of them when it is > 0; the first `skip_records` of the epoch's stream
  // are left out (a worker resuming from a checkpoint's data position).
  StatusOr<std::unique_ptr<BatchSource>> TrainEpoch(int epoch, int rank, int num_workers,
                                                    int64_t max_batches = 0,
                                                    uint64_t skip_records = 0) const;
  // The eval split's batches for worker `rank` of `num_workers`.
  StatusOr<std::unique_ptr<BatchSource>> Eval(int rank, int num_workers) const;
  // min over workers of their batch count in one epoch (.mtb input only).
  StatusOr<int64_t> SyncStepsPerEpoch(int num_workers) const;

  const FeatureMap& feature_map() const { return map_; }
  const std::vector<std::string>& train_files() const { return train_files_; }
  const std::vector<std::string>& eval_files() const { return eval_files_; }
  // Records in one epoch of the whole training split (CSV: bad ones too), from the index.
  uint64_t train_records() const;

 private:
  explicit TrainingData(const JobSpec& spec) : spec_(spec) {}

  JobSpec spec_;
  FeatureMap map_;
  std::vector<std::string> train_files_;
  std::vector<std::string> eval_files_;
  std::shared_ptr<const InputIndex> train_index_, eval_index_;
};

}  // namespace mtps
