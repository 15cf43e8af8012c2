// RunLocal: mtps-worker --local — LocalTrainer over the whole job, progress on the log,
// a per-task table at the end, and summary.json in the run directory.
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "base/file_system.h"
#include "scheduler/run_summary.h"
#include "worker/local_trainer.h"
#include "worker/worker_run.h"

namespace mtps {

Status RunLocal(const JobSpec& spec, const WorkerRunOptions& options) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  LocalTrainerOptions local_options{.device = options.device, .cpu_threads = options.cpu_threads};
  local_options.on_step = [&](const StepReport& report) {
    if (options.log_every <= 0 || report.step % options.log_every != 0) return;
    std::string losses;
    for (size_t t = 0; t < report.task_loss.size(); ++t) {
      char text[64];
      std::snprintf(text, sizeof(text), " %s loss %.4f", spec.tasks[t].name.c_str(),
                    report.task_loss[t]);
      losses += text;
    }
    LOG(INFO) << "step " << report.step << losses;
  };
  MTPS_ASSIGN_OR_RETURN(auto local, LocalTrainer::Create(spec, local_options));
  std::map<int, EvalResult> evals;  // by epoch
  MTPS_ASSIGN_OR_RETURN(EvalResult best, local->Run([&](int epoch, const EvalResult& eval) {
    evals[epoch] = eval;
    for (const TaskEval& task : eval.tasks) {
      LOG(INFO) << "epoch " << epoch << " eval " << task.name << ": auc " << task.auc
                << " logloss " << task.logloss;
    }
  }));
  const BestEpoch& best_epoch = local->best_epoch();
  if (best_epoch.best_epoch() >= 0) {
    LOG(INFO) << "best epoch " << best_epoch.best_epoch() << " (" << best_epoch.MetricName() << " "
              << best_epoch.best_metric() << ") of " << local->epochs_run() << " trained"
              << (best_epoch.stopped_early() ? ", stopped early" : "") << "; its model is kept";
  }
  const double train_seconds = local->train_seconds();

  scheduler::RunSummary summary;
  summary.model = ModelTypeName(spec.model.type);
  summary.mode = "local";
  summary.servers = 0;
  summary.workers = 1;
  summary.epochs = local->epochs_run();
  summary.best_epoch = best_epoch.best_epoch();
  summary.stopped_early = best_epoch.stopped_early();
  summary.samples = local->samples();
  summary.skipped_records = local->bad_records().bad_records;
  summary.train_seconds = train_seconds;
  summary.samples_per_sec = train_seconds > 0 ? local->samples() / train_seconds : 0;
  std::vector<std::string> task_names;
  for (const TaskSpec& task : spec.tasks) task_names.push_back(task.name);
  std::map<std::string, double> oracle;
  if (!spec.data.oracle.empty()) {
    StatusOr<std::map<std::string, double>> read = scheduler::ReadOracleAucs(spec.data.oracle, task_names);
    if (read.ok()) {
      oracle = *read;
    } else {
      LOG(WARNING) << "oracle AUC not shown: " << read.status();
    }
  }
  for (const TaskEval& task : best.tasks) {
    scheduler::TaskSummary t{.name = task.name, .auc = task.auc, .logloss = task.logloss};
    if (oracle.count(task.name)) t.oracle_auc = oracle[task.name];
    summary.tasks.push_back(t);
  }
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (size_t e = 0; e < local->epoch_stats().size(); ++e) {
    const LocalTrainer::EpochStats& stats = local->epoch_stats()[e];
    scheduler::EpochSummary epoch{.epoch = static_cast<int>(e), .samples = stats.samples, .seconds = stats.seconds};
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
      scheduler::EpochTaskSummary task{spec.tasks[t].name, t < stats.train_loss.size() ? stats.train_loss[t] : kNaN,
                                       kNaN, kNaN};
      if (auto eval = evals.find(static_cast<int>(e)); eval != evals.end()) {
        for (const TaskEval& measured : eval->second.tasks) {
          if (measured.name != task.name) continue;
          task.auc = measured.auc;
          task.logloss = measured.logloss;
        }
      }
      epoch.tasks.push_back(std::move(task));
    }
    summary.history.push_back(std::move(epoch));
  }
  LOG(INFO) << "trained " << summary.samples << " samples in " << train_seconds << " s ("
            << summary.samples_per_sec << " samples/s), "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s in all";
  std::printf("%s\n", scheduler::RunSummaryJson(summary).c_str());
  if (options.run_dir.empty()) return Status::OK();
  auto fs = NewPosixFileSystem();
  return scheduler::WriteRunSummary(*fs, options.run_dir, summary);
}

}  // namespace mtps
