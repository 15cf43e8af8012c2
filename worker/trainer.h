// Trainer: the one training loop of mtps, for LocalTrainer (parameters in process) and
// for the distributed worker (parameters on the servers) alike — read, pull, forward and
// backward, push — with prefetching and bounded staleness.
//
//   LocalParameterStore store(spec);
//   MTPS_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(spec, &store, {.device = "cpu"}));
//   MTPS_RETURN_IF_ERROR(trainer->InitParameters());
//   MTPS_RETURN_IF_ERROR(trainer->TrainEpoch(&train_source, on_step));
//   MTPS_ASSIGN_OR_RETURN(EvalResult eval, trainer->Evaluate(&eval_source));
//
// One step t: pull the rows of the batch's unique keys of every table and the dense
// blocks; the model computes losses and gradients; the row gradients and dense gradients
// are pushed. With prefetch = 0 and synchronous pushes (the default), every pull sees
// every earlier push: the run is plain sequential SGD, and a one-worker distributed run
// equals the local one. With prefetch = k the pulls of the next k batches are in flight
// while this one computes; in async mode at most max_staleness steps' pushes are
// unacknowledged at once. In async mode with training.dense_sync_every = k > 1 the dense
// gradients are summed on the worker and pushed once every k steps (and at a checkpoint
// cut and the end of an epoch), and the dense blocks are pulled every k steps.
//
// Not thread-safe: one thread drives a Trainer.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "models/multitask_model.h"
#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/batch_source.h"
#include "worker/parameter_store.h"

namespace mtps {

struct TrainerOptions {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  int cpu_threads = 1;         // OpenBLAS threads for the CPU backend
  int worker_rank = 0;
  int num_workers = 1;
  bool sync = false;           // servers aggregate all workers' step t, then apply once
  int prefetch = 0;            // batches whose pulls run ahead of compute
  int max_staleness = 0;       // async: steps whose pushes may be unacknowledged
};

// Reported after every training step.
struct StepReport {
  uint64_t step = 0;
  int batch_size = 0;
  uint64_t data_position = 0;  // records of this epoch trained, this batch included
  std::vector<double> task_loss;  // mean loss of this batch, per task
};

// Payload bytes of the training steps' pulls and pushes, as the trainer hands them to its
// store (keys 8 bytes, values 4): what a step costs on the wire less message framing.
// Evaluation pulls are not counted.
struct TrafficCounters {
  uint64_t sparse_pull_bytes = 0, sparse_push_bytes = 0;
  uint64_t dense_pull_bytes = 0, dense_push_bytes = 0;
  uint64_t dense_pulls = 0, dense_pushes = 0;
};

struct TaskEval {
  std::string name;
  double auc = 0;      // NaN when a class is absent from the evaluation set
  double logloss = 0;  // bce tasks
  double mse = 0;      // mse tasks
  double loss = 0;     // mean loss, the task's own
};

struct EvalResult {
  uint64_t samples = 0;
  std::vector<TaskEval> tasks;
};

class Trainer {
 public:
  static StatusOr<std::unique_ptr<Trainer>> Create(const JobSpec& spec, ParameterStore* store,
                                                   const TrainerOptions& options);
  ~Trainer();

  // Creates the dense blocks in the store from this model's initial values (a block that
  // exists already is kept: the first worker's values win), then loads the store's values.
  Status InitParameters();

  // Trains on every batch `source` yields; `on_step` (may be empty) sees each step.
  // Returns after all of the epoch's pushes were acknowledged.
  Status TrainEpoch(BatchSource* source, const std::function<void(const StepReport&)>& on_step);

  // Scores every batch of `source` with the current parameters (pulls do not count
  // toward admission) and computes each task's metrics over all of them.
  StatusOr<EvalResult> Evaluate(BatchSource* source);

  uint64_t step() const { return step_; }
  // A worker resuming from a checkpoint continues its step count.
  void set_step(uint64_t step) { step_ = step; }
  // Pushes the dense gradients summed since the last push (dense_sync_every), then waits
  // until every push issued so far is acknowledged: with no pushes in flight, the servers
  // hold all of this worker's updates (a checkpoint's consistent cut). Call from
  // TrainEpoch's on_step.
  Status Quiesce();
  models::MultiTaskModel<float>& model() { return *model_; }
  // The dense parameters as the store holds them, block by block in one flat array.
  Status PullDenseValues(std::vector<float>* values);
  // Steps between two pulls of the dense blocks (1 in sync and exact modes).
  uint64_t DensePullEvery() const;
  // Steps whose dense gradients are summed into one push (1 in sync mode).
  uint64_t DenseSyncEvery() const;
  const TrafficCounters& traffic() const { return traffic_; }

 private:
  struct Slot;  // one batch with its pulled rows and dense values

  Trainer(const JobSpec& spec, ParameterStore* store, const TrainerOptions& options);
  void IssuePulls(Slot* slot, bool train, bool with_dense);
  Status WaitPulls(Slot* slot);
  models::ModelInput InputFor(const Slot& slot) const;
  Status Push(const Slot& slot, const models::ModelOutput& out);
  // Pushes the dense gradient sum (when it holds any step) as step `step`'s.
  void FlushDense(uint64_t step, std::vector<std::future<Status>>* pushes);
  void PushDenseBlocks(const float* grads, const PushOptions& options,
                       std::vector<std::future<Status>>* pushes);
  Status WaitPushes(size_t keep_at_most);

  JobSpec spec_;
  ParameterStore* store_;
  TrainerOptions options_;
  std::unique_ptr<models::MultiTaskModel<float>> model_;
  std::vector<float> dense_grads_;        // host copy of the gradients (CUDA)
  std::vector<float> dense_sum_;          // dense gradients summed since the last push
  uint64_t dense_sum_steps_ = 0;          // steps in dense_sum_
  TrafficCounters traffic_;
  std::vector<std::unique_ptr<Slot>> free_slots_;
  std::deque<std::vector<std::future<Status>>> pending_pushes_;
  models::ModelOutput out_;
  uint64_t step_ = 0;
};

}  // namespace mtps
