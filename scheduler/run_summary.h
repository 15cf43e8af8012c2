// RunSummary: the record of a finished run, written as `summary.json` in the run
// directory, and the reader of a generated data set's oracle AUCs.
//
//   RunSummary summary{.model = "mmoe", .mode = "async", .servers = 2, .workers = 2, ...};
//   MTPS_RETURN_IF_ERROR(WriteRunSummary(*fs, run_dir, summary));   // atomic
//
// summary.json: {"model", "mode", "servers", "workers", "epochs"[, "best_epoch",
// "stopped_early"], "samples", "skipped_records", "train_seconds", "samples_per_sec", "tasks":
// {"<name>": {"auc", "logloss"[, "oracle_auc"]}}}; a metric that was not measured (NaN) is
// written as null. With best_epoch, the tasks' metrics are that epoch's (the model the run
// keeps); "epochs" is how many were trained.
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
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

struct RunSummary {
  std::string model;
  std::string mode;
  int servers = 0;
  int workers = 0;
  int epochs = 0;
  int best_epoch = -1;         // the evaluated epoch the metrics belong to; -1: none
  bool stopped_early = false;  // training.early_stopping ended the run before its epochs
  uint64_t samples = 0;
  uint64_t skipped_records = 0;  // input records skipped as bad (data.on_bad_record: skip)
  double train_seconds = 0;
  double samples_per_sec = 0;
  std::vector<TaskSummary> tasks;
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
