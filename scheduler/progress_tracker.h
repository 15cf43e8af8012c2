// ProgressTracker: the latest progress report of every worker, and what the scheduler
// makes of them: the cluster's samples/s and per-task loss for the progress log, which
// workers are done, and the final evaluation metrics for summary.json.
//
//   ProgressTracker progress(/*num_workers=*/2, {"ctr", "cvr"});
//   MTPS_RETURN_IF_ERROR(progress.Record(rank, request.getProgress()));
//   LOG(INFO) << progress.Line();   // "epoch 1 step 1200 | 84,000 samples/s | ctr loss 0.4512 ..."
//   if (progress.AllDone()) ...
//
// What a worker sends (the contract with the worker's training loop): phase "train"
// reports carry the recent training loss per task; phase "eval" reports carry the
// evaluation of the epoch just finished (auc, logloss, mse per task); the last report has
// phase "done" and may carry the final evaluation too. `samples` and `trainSeconds` count
// from the start of the job, for that worker. Evaluation metrics of the cluster are the
// mean over the workers that evaluated (each evaluates its own share of the eval split).
// A "train" report with epochEnd closes that worker's epoch (its tasks' loss is the
// epoch's mean training loss); with the "eval" reports they make History(), one entry per
// epoch for summary.json.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/mtps.capnp.h"
#include "base/status.h"
#include "scheduler/run_summary.h"

namespace mtps::scheduler {

struct TaskMetrics {
  double loss = 0;
  double auc = 0;      // NaN when not measured
  double logloss = 0;
  double mse = 0;
};

struct ClusterProgress {
  uint32_t epoch = 0;           // the lowest epoch any worker is in
  uint64_t min_step = 0;
  uint64_t max_step = 0;
  uint64_t samples = 0;         // sum over workers
  uint64_t bad_records = 0;     // sum over workers: input records skipped as bad
  double samples_per_sec = 0;   // sum over workers
  double train_seconds = 0;     // the longest of the workers' training times
  int reporting = 0;            // workers that reported at least once
  int done = 0;
  std::map<std::string, double> train_loss;        // mean over reporting workers
  std::map<std::string, TaskMetrics> eval;         // mean over workers that evaluated
  int64_t eval_epoch = -1;  // the epoch of the latest "eval" report (-1: none)
  uint64_t epoch_records = 0;   // records in one epoch of the training split (0: unknown)
  uint64_t epoch_position = 0;  // records of the current epoch consumed, over the workers not done
};

class ProgressTracker {
 public:
  ProgressTracker(int num_workers, std::vector<std::string> task_names);

  // INVALID_ARGUMENT naming the value for a rank out of range, an unknown phase or a task
  // the job does not have; a report after "done" is refused with FAILED_PRECONDITION.
  Status Record(int worker_rank, proto::Progress::Reader progress);

  ClusterProgress Current() const;
  bool AllDone() const;
  bool IsDone(int worker_rank) const;  // false for a rank out of range
  // One log line for a person.
  std::string Line() const;
  // One entry per epoch some worker closed (epochEnd) or evaluated, oldest first: samples
  // summed and seconds the longest over the workers that closed it, train loss the mean
  // over them, eval metrics the mean over the workers that evaluated it; NaN where absent.
  std::vector<EpochSummary> History() const;

  // One epoch as one worker reported it.
  struct EpochRecord {
    bool trained = false;  // an epochEnd report came
    uint64_t samples = 0;
    double seconds = 0;
    std::map<std::string, double> train_loss;
    std::map<std::string, TaskMetrics> eval;  // its "eval" report, when the worker evaluated
  };

  // What the tracker holds of one worker (the scheduler's journal saves and restores it).
  struct WorkerState {
    bool reported = false;
    bool done = false;
    uint32_t epoch = 0;
    uint64_t step = 0;
    uint64_t samples = 0;
    uint64_t bad_records = 0;
    double samples_per_sec = 0;
    double train_seconds = 0;
    std::map<std::string, double> train_loss;
    std::map<std::string, TaskMetrics> eval;  // the latest evaluation
    int64_t eval_epoch = -1;                   // of the latest "eval" report
    std::map<uint32_t, EpochRecord> epochs;    // by epoch
    uint64_t epoch_records = 0;                // not journaled: every train report has it
    uint64_t data_position = 0;                // not journaled: every train report has it
  };

  std::vector<WorkerState> Export() const;
  // Replaces every worker's state; INVALID_ARGUMENT when the count is not the job's.
  Status Import(std::vector<WorkerState> workers);

 private:
  const std::vector<std::string> task_names_;
  mutable std::mutex mutex_;
  std::vector<WorkerState> workers_;  // GUARDED_BY(mutex_)
};

}  // namespace mtps::scheduler
