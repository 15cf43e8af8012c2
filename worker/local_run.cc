// RunLocal: mtps-worker --local — LocalTrainer over the whole job, progress on the log,
// a per-task table at the end, and summary.json in the run directory.
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "ps/checkpoint_fs.h"
#include "scheduler/run_summary.h"
#include "worker/local_trainer.h"
#include "worker/worker_run.h"

namespace mtps {

Status RunLocal(const JobSpec& spec, const WorkerRunOptions& options) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  double train_seconds = 0;
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
  EvalResult last;
  for (int epoch = 0; epoch < spec.training.epochs; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    MTPS_RETURN_IF_ERROR(local->TrainEpoch(epoch).WithContext("epoch " + std::to_string(epoch)));
    train_seconds += std::chrono::duration<double>(Clock::now() - epoch_start).count();
    if (local->data().eval_files().empty()) continue;
    MTPS_ASSIGN_OR_RETURN(last, local->Evaluate());
    for (const TaskEval& task : last.tasks) {
      LOG(INFO) << "epoch " << epoch << " eval " << task.name << ": auc " << task.auc
                << " logloss " << task.logloss;
    }
  }

  scheduler::RunSummary summary;
  summary.model = ModelTypeName(spec.model.type);
  summary.mode = "local";
  summary.servers = 0;
  summary.workers = 1;
  summary.epochs = spec.training.epochs;
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
  for (const TaskEval& task : last.tasks) {
    scheduler::TaskSummary t{.name = task.name, .auc = task.auc, .logloss = task.logloss};
    if (oracle.count(task.name)) t.oracle_auc = oracle[task.name];
    summary.tasks.push_back(t);
  }
  LOG(INFO) << "trained " << summary.samples << " samples in " << train_seconds << " s ("
            << summary.samples_per_sec << " samples/s), "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s in all";
  std::printf("%s\n", scheduler::RunSummaryJson(summary).c_str());
  if (options.run_dir.empty()) return Status::OK();
  auto fs = ps::NewPosixFileSystem();
  return scheduler::WriteRunSummary(*fs, options.run_dir, summary);
}

}  // namespace mtps
