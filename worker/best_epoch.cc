// BestEpoch: the early-stopping metric (one task's AUC or the bce tasks' mean) and the
// patience count.
#include "worker/best_epoch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mtps {

BestEpoch::BestEpoch(const JobSpec& spec) : rule_(spec.training.early_stopping) {
  for (const TaskSpec& task : spec.tasks) {
    if (task.loss == TaskSpec::Loss::kBce) bce_tasks_.push_back(task.name);
  }
}

double BestEpoch::Metric(const EvalResult& eval) const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  int count = 0;
  for (const TaskEval& task : eval.tasks) {
    const bool wanted = rule_.task == "mean"
                            ? std::find(bce_tasks_.begin(), bce_tasks_.end(), task.name) != bce_tasks_.end()
                            : task.name == rule_.task;
    if (!wanted) continue;
    if (!std::isfinite(task.auc)) return nan;
    sum += task.auc;
    ++count;
  }
  return count > 0 ? sum / count : nan;
}

std::string BestEpoch::MetricName() const {
  return rule_.task == "mean" ? "mean auc" : "auc of " + rule_.task;
}

// The best epoch is the one with the highest metric; patience counts the epochs since the
// metric last rose by more than min_delta (so creeping gains still end the run, while the
// model kept is the best one seen).
BestEpoch::Verdict BestEpoch::Observe(int epoch, const EvalResult& eval) {
  Verdict v;
  v.metric = Metric(eval);
  const bool finite = std::isfinite(v.metric);
  if (finite && (best_epoch_ < 0 || v.metric > best_metric_)) {
    v.improved = true;
    best_epoch_ = epoch;
    best_metric_ = v.metric;
    best_ = eval;
  }
  if (finite && (!has_reference_ || v.metric > reference_ + rule_.min_delta)) {
    has_reference_ = true;
    reference_ = v.metric;
    since_reference_ = 0;
  } else {
    ++since_reference_;
  }
  v.stop = rule_.patience > 0 && since_reference_ >= rule_.patience;
  stopped_early_ = stopped_early_ || v.stop;
  return v;
}

}  // namespace mtps
