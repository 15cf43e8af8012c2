// BestEpoch: training.early_stopping's rule and the record of the best epoch so far, fed
// with each epoch's evaluation by LocalTrainer and by every worker of a cluster.
//
//   BestEpoch best(spec);
//   for (int epoch = 0; epoch < spec.training.epochs; ++epoch) {
//     Train(epoch);
//     BestEpoch::Verdict v = best.Observe(epoch, Evaluate());
//     if (v.improved) KeepTheModel();
//     if (v.stop) break;   // `patience` epochs without a gain above min_delta
//   }
//   Report(best.best_epoch(), best.best());
//
// The metric is the AUC of early_stopping.task, or the mean AUC of the bce tasks ("mean",
// also the default without early_stopping, when the best epoch is still reported). An
// evaluation whose metric is not finite (a class absent from the eval split) never counts
// as an improvement. Observe() is a pure function of the evaluations so far, so workers
// that see the same evaluations take the same decisions. Not thread-safe.
#pragma once

#include <string>

#include "protocol/job_spec.h"
#include "worker/trainer.h"

namespace mtps {

class BestEpoch {
 public:
  explicit BestEpoch(const JobSpec& spec);

  struct Verdict {
    double metric = 0;      // this epoch's
    bool improved = false;  // this epoch is the new best
    bool stop = false;      // early stopping: train no further epoch
  };
  Verdict Observe(int epoch, const EvalResult& eval);

  // The metric of `eval` as this rule reads it (NaN when it cannot be measured).
  double Metric(const EvalResult& eval) const;
  // "mean auc" or "auc of ctr", for log lines.
  std::string MetricName() const;

  int best_epoch() const { return best_epoch_; }  // -1 before a finite metric was seen
  const EvalResult& best() const { return best_; }
  double best_metric() const { return best_metric_; }
  bool stopped_early() const { return stopped_early_; }

 private:
  EarlyStoppingSpec rule_;
  std::vector<std::string> bce_tasks_;
  int best_epoch_ = -1;
  double best_metric_ = 0;
  EvalResult best_;
  bool has_reference_ = false;
  double reference_ = 0;  // the metric when it last rose by more than min_delta
  int since_reference_ = 0;
  bool stopped_early_ = false;
};

}  // namespace mtps
