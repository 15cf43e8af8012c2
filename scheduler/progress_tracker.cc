// ProgressTracker: validation of progress reports and their aggregation over workers.
#include "scheduler/progress_tracker.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace mtps::scheduler {

ProgressTracker::ProgressTracker(int num_workers, std::vector<std::string> task_names)
    : task_names_(std::move(task_names)), workers_(num_workers) {}

Status ProgressTracker::Record(int worker_rank, proto::Progress::Reader progress) {
  const std::string who = "progress of worker " + std::to_string(worker_rank);
  if (worker_rank < 0 || worker_rank >= static_cast<int>(workers_.size())) {
    return InvalidArgument(who + ": no such worker (the job has " +
                           std::to_string(workers_.size()) + ")");
  }
  const std::string phase = progress.getPhase();
  if (phase != "train" && phase != "eval" && phase != "done") {
    return InvalidArgument(who + ": unknown phase '" + phase + "' (train, eval or done)");
  }
  std::map<std::string, TaskMetrics> tasks;
  for (auto task : progress.getTasks()) {
    const std::string name = task.getName();
    if (std::find(task_names_.begin(), task_names_.end(), name) == task_names_.end()) {
      return InvalidArgument(who + ": unknown task '" + name + "'");
    }
    tasks[name] = TaskMetrics{task.getLoss(), task.getAuc(), task.getLogloss(), task.getMse()};
  }
  if (!std::isfinite(progress.getEpochSeconds()) || progress.getEpochSeconds() < 0) {
    return InvalidArgument(who + ": epochSeconds " + std::to_string(progress.getEpochSeconds()) +
                           " must be finite and >= 0");
  }
  if (!std::isfinite(progress.getSamplesPerSec()) || !std::isfinite(progress.getTrainSeconds())) {
    return InvalidArgument(who + ": samplesPerSec " + std::to_string(progress.getSamplesPerSec()) +
                           " and trainSeconds " + std::to_string(progress.getTrainSeconds()) +
                           " must be finite");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  WorkerState& w = workers_[worker_rank];
  if (w.done) return FailedPrecondition(who + ": phase '" + phase + "' after the worker was done");
  w.reported = true;
  w.epoch = progress.getEpoch();
  w.step = progress.getStep();
  w.samples = progress.getSamples();
  w.bad_records = progress.getBadRecords();
  w.samples_per_sec = progress.getSamplesPerSec();
  w.train_seconds = progress.getTrainSeconds();
  w.epoch_records = std::max(w.epoch_records, progress.getEpochRecords());
  if (phase == "train") {
    w.data_position = progress.getDataPosition();
    for (const auto& [name, m] : tasks) w.train_loss[name] = m.loss;
    if (progress.getEpochEnd()) {
      EpochRecord& e = w.epochs[progress.getEpoch()];
      e.trained = true;
      e.samples = progress.getEpochSamples();
      e.seconds = progress.getEpochSeconds();
      for (const auto& [name, m] : tasks) e.train_loss[name] = m.loss;
    }
  } else if (!tasks.empty()) {
    // A worker's last "eval" report may be an earlier epoch's, its best (worker/best_epoch.h).
    if (phase == "eval") {
      w.eval_epoch = progress.getEpoch();
      w.epochs[progress.getEpoch()].eval = tasks;
    }
    w.eval = std::move(tasks);
  }
  if (phase == "done") {
    w.done = true;
    w.samples_per_sec = 0;
  }
  return Status::OK();
}

ClusterProgress ProgressTracker::Current() const {
  ClusterProgress c;
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, int> loss_count;
  std::map<std::string, int> eval_count;
  bool first = true;
  for (const WorkerState& w : workers_) {
    if (!w.reported) continue;
    ++c.reporting;
    c.done += w.done;
    c.epoch = first ? w.epoch : std::min(c.epoch, w.epoch);
    c.min_step = first ? w.step : std::min(c.min_step, w.step);
    c.max_step = std::max(c.max_step, w.step);
    first = false;
    c.samples += w.samples;
    c.bad_records += w.bad_records;
    c.samples_per_sec += w.samples_per_sec;
    c.train_seconds = std::max(c.train_seconds, w.train_seconds);
    c.eval_epoch = std::max(c.eval_epoch, w.eval_epoch);
    c.epoch_records = std::max(c.epoch_records, w.epoch_records);
    if (!w.done) c.epoch_position += w.data_position;
    for (const auto& [name, loss] : w.train_loss) {
      c.train_loss[name] += loss;
      ++loss_count[name];
    }
    for (const auto& [name, m] : w.eval) {
      TaskMetrics& sum = c.eval[name];
      sum.loss += m.loss;
      sum.auc += m.auc;
      sum.logloss += m.logloss;
      sum.mse += m.mse;
      ++eval_count[name];
    }
  }
  for (auto& [name, loss] : c.train_loss) loss /= loss_count[name];
  for (auto& [name, m] : c.eval) {
    const double n = eval_count[name];
    m.loss /= n;
    m.auc /= n;
    m.logloss /= n;
    m.mse /= n;
  }
  return c;
}

bool ProgressTracker::AllDone() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::all_of(workers_.begin(), workers_.end(), [](const WorkerState& w) { return w.done; });
}

bool ProgressTracker::IsDone(int worker_rank) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return worker_rank >= 0 && worker_rank < static_cast<int>(workers_.size()) &&
         workers_[worker_rank].done;
}

std::string ProgressTracker::Line() const {
  const ClusterProgress c = Current();
  // A worker that is done reports no rate: once all are, the run's own average.
  const bool all_done = c.done == static_cast<int>(workers_.size());
  const double rate = all_done && c.train_seconds > 0 ? c.samples / c.train_seconds : c.samples_per_sec;
  char buf[160];
  std::snprintf(buf, sizeof(buf), "epoch %u step %llu | %llu samples | %.0f samples/s | %d/%zu workers done",
                c.epoch, static_cast<unsigned long long>(c.max_step),
                static_cast<unsigned long long>(c.samples), rate, c.done,
                workers_.size());
  std::string line = buf;
  for (const std::string& task : task_names_) {
    auto loss = c.train_loss.find(task);
    if (loss != c.train_loss.end()) {
      std::snprintf(buf, sizeof(buf), " | %s loss %.4f", task.c_str(), loss->second);
      line += buf;
    }
    auto eval = c.eval.find(task);
    if (eval != c.eval.end()) {
      std::snprintf(buf, sizeof(buf), " eval auc %.4f logloss %.4f", eval->second.auc,
                    eval->second.logloss);
      line += buf;
    }
  }
  return line;
}

std::vector<EpochSummary> ProgressTracker::History() const {
  struct Sums {
    EpochSummary summary;
    std::map<std::string, std::pair<double, int>> loss, auc, logloss, mse;  // sum, count
  };
  std::map<uint32_t, Sums> epochs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const WorkerState& w : workers_) {
      for (const auto& [epoch, record] : w.epochs) {
        Sums& sums = epochs[epoch];
        if (record.trained) {
          sums.summary.samples += record.samples;
          sums.summary.seconds = std::max(sums.summary.seconds, record.seconds);
        }
        auto add = [](std::pair<double, int>& sum, double v) {
          sum.first += v;
          ++sum.second;
        };
        for (const auto& [name, loss] : record.train_loss) add(sums.loss[name], loss);
        for (const auto& [name, m] : record.eval) {
          add(sums.auc[name], m.auc);
          add(sums.logloss[name], m.logloss);
          add(sums.mse[name], m.mse);
        }
      }
    }
  }
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  auto mean = [&](const std::map<std::string, std::pair<double, int>>& sums, const std::string& name) {
    auto it = sums.find(name);
    return it == sums.end() || it->second.second == 0 ? kNaN : it->second.first / it->second.second;
  };
  std::vector<EpochSummary> history;
  for (auto& [epoch, sums] : epochs) {
    EpochSummary e = std::move(sums.summary);
    e.epoch = static_cast<int>(epoch);
    e.evaluated = !sums.auc.empty();
    for (const std::string& task : task_names_) {
      e.tasks.push_back({task, mean(sums.loss, task), mean(sums.auc, task), mean(sums.logloss, task),
                         mean(sums.mse, task)});
    }
    history.push_back(std::move(e));
  }
  return history;
}

std::vector<ProgressTracker::WorkerState> ProgressTracker::Export() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return workers_;
}

Status ProgressTracker::Import(std::vector<WorkerState> workers) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (workers.size() != workers_.size()) {
    return InvalidArgument("progress of " + std::to_string(workers.size()) + " workers for a job of " +
                           std::to_string(workers_.size()));
  }
  workers_ = std::move(workers);
  return Status::OK();
}

}  // namespace mtps::scheduler
