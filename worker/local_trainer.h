// LocalTrainer: trains a job in one process, with no network — the embeddings in the
// parameter server's own tables (LocalParameterStore), the dense part on the chosen
// device, through the same Trainer loop the distributed workers run. It is the reference
// that a distributed run must equal, and the fast path for small experiments.
//
//   MTPS_ASSIGN_OR_RETURN(JobSpec spec, LoadJobSpec("job.yaml"));
//   MTPS_ASSIGN_OR_RETURN(auto local, LocalTrainer::Create(spec, {.device = "cpu"}));
//   MTPS_ASSIGN_OR_RETURN(EvalResult eval, local->Run([](int epoch, const EvalResult& e) {
//     LOG(INFO) << "epoch " << epoch << " ctr auc " << e.tasks[0].auc;
//   }));
//
// Not thread-safe.
#pragma once

#include <functional>
#include <memory>

#include "protocol/job_spec.h"
#include "worker/bad_records.h"
#include "worker/best_epoch.h"
#include "worker/local_parameter_store.h"
#include "worker/trainer.h"
#include "worker/training_data.h"

namespace mtps {

struct LocalTrainerOptions {
  std::string device = "cpu";
  int cpu_threads = 1;
  std::function<void(const StepReport&)> on_step;  // may be empty
};

class LocalTrainer {
 public:
  static StatusOr<std::unique_ptr<LocalTrainer>> Create(const JobSpec& spec,
                                                        const LocalTrainerOptions& options);

  // Trains the spec's epochs; after each, evaluates on the eval split (when the job has
  // one), calls `on_epoch`, and stops early as training.early_stopping says. The store
  // then holds the best epoch's parameters (restored from a snapshot taken when that
  // epoch ended) and Run() returns the best epoch's evaluation; without eval input, the
  // last epoch's model and an empty result.
  StatusOr<EvalResult> Run(const std::function<void(int, const EvalResult&)>& on_epoch = {});
  Status TrainEpoch(int epoch);
  StatusOr<EvalResult> Evaluate();

  Trainer& trainer() { return *trainer_; }
  LocalParameterStore& store() { return *store_; }
  const TrainingData& data() const { return *data_; }
  uint64_t samples() const { return samples_; }
  double train_seconds() const { return train_seconds_; }  // in TrainEpoch(), not evaluating
  // After Run(): which epoch was best, whether the run stopped early, epochs trained.
  const BestEpoch& best_epoch() const { return best_; }
  int epochs_run() const { return epochs_run_; }
  // Bad records skipped so far (data.on_bad_record: skip); TrainEpoch() fails once they
  // are every record or over data.max_bad_fraction.
  const BadRecordTally& bad_records() const { return bad_records_; }
  // One entry per TrainEpoch(), in order: what summary.json's per-epoch history holds.
  struct EpochStats {
    uint64_t samples = 0;
    double seconds = 0;
    std::vector<double> train_loss;  // per task, the mean over the epoch's samples
  };
  const std::vector<EpochStats>& epoch_stats() const { return epoch_stats_; }

 private:
  LocalTrainer() = default;

  JobSpec spec_;
  LocalTrainerOptions options_;
  std::unique_ptr<TrainingData> data_;
  std::unique_ptr<LocalParameterStore> store_;
  std::unique_ptr<Trainer> trainer_;
  uint64_t samples_ = 0;
  double train_seconds_ = 0;
  BadRecordTally bad_records_;
  BestEpoch best_{JobSpec{}};
  int epochs_run_ = 0;
  std::vector<EpochStats> epoch_stats_;
};

}  // namespace mtps
