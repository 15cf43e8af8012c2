// RunSummary: the record of a finished run, written as `summary.json` in the run
// directory, and the reader of a generated data set's oracle AUCs.
//
//   RunSummary summary{.model = "mmoe", .mode = "async", .servers = 2, .workers = 2, ...};
//   MTPS_RETURN_IF_ERROR(WriteRunSummary(*fs, run_dir, summary));   // atomic
//
// summary.json: {"model", "mode", "servers", "workers", "epochs"[, "best_epoch",
// "stopped_early"], "samples", "skipped_records", "train_seconds", "samples_per_sec", "tasks":
// {"<name>": {"auc", "logloss"[, "oracle_auc"]}}, "history": [{"epoch", "samples",
// "seconds", "tasks": {"<name>": {"train_loss", "auc", "logloss"}}}, ...]}; a metric that was
// not measured (NaN) is written as null. With best_epoch, the tasks' metrics are that
// epoch's (the model the run keeps); "epochs" is how many were trained. "history" has one
// entry per trained epoch, oldest first (launch/plot_run.py draws it).
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/file_system.h"

namespace mtps::scheduler {

struct TaskSummary {
  std::string name;
  double auc = 0;
  double logloss = 0;
  std::optional<double> oracle_auc;
};

// One epoch of the run's history.
struct EpochTaskSummary {
  std::string name;
  double train_loss = 0;  // mean training loss over the epoch's samples; NaN: not reported
  double auc = 0;         // evaluation after the epoch; NaN: not evaluated
  double logloss = 0;
  double mse = std::numeric_limits<double>::quiet_NaN();  // mse tasks; not in summary.json
};
struct EpochSummary {
  int epoch = 0;
  bool evaluated = false;  // some worker reported an evaluation of this epoch
  uint64_t samples = 0;  // trained in this epoch, all workers
  double seconds = 0;    // spent training this epoch (the slowest worker; evaluation not counted)
  std::vector<EpochTaskSummary> tasks;  // in the job's task order
};

struct RunSummary {
  std::string model;
  std::string mode;
  int servers = 0;
  int workers = 0;
  int epochs = 0;
  int best_epoch = -1;         // the evaluated epoch the metrics belong to; -1: none
  bool stopped_early = false;  // training.early_stopping ended the run before its epochs
  std::string best_checkpoint;  // the checkpoint holding best_epoch's model; empty: none
  uint64_t samples = 0;
  uint64_t skipped_records = 0;  // input records skipped as bad (data.on_bad_record: skip)
  double train_seconds = 0;
  double samples_per_sec = 0;
  std::vector<TaskSummary> tasks;
  std::vector<EpochSummary> history;
};

std::string RunSummaryJson(const RunSummary& summary);
std::string SummaryPath(const std::string& run_dir);  // "<run_dir>/summary.json"
// Creates the directory if needed; writes to a temporary name, syncs, renames.
Status WriteRunSummary(FileSystem& fs, const std::string& run_dir,
                       const RunSummary& summary);

// Per-task oracle AUC from a data set's oracle.json. Accepted shapes, per task name T:
// {"tasks": {"T": {"auc": x}}}, {"tasks": {"T": {"oracle_auc": x}}}, {"T": {"auc": x}} or
// {"T": x}. Tasks absent from the file are absent from the result; an unreadable or
// malformed file is an error naming the path.
StatusOr<std::map<std::string, double>> ReadOracleAucs(const std::string& path,
                                                       const std::vector<std::string>& tasks);

}  // namespace mtps::scheduler
