// EpochLoss: the mean training loss of each task over one epoch, weighted by batch size,
// from the trainer's step reports; the per-epoch history of summary.json carries it.
//
//   EpochLoss loss;
//   trainer->TrainEpoch(source, [&](const StepReport& r) { loss.Add(r); });
//   std::vector<double> mean = loss.Mean();   // one per task; empty before any step
//
// Not thread-safe (the training loop's own thread adds and reads).
#pragma once

#include <cstdint>
#include <vector>

#include "worker/trainer.h"

namespace mtps {

class EpochLoss {
 public:
  void Add(const StepReport& report) {
    if (sums_.size() < report.task_loss.size()) sums_.resize(report.task_loss.size(), 0.0);
    for (size_t t = 0; t < report.task_loss.size(); ++t) sums_[t] += report.task_loss[t] * report.batch_size;
    samples_ += static_cast<uint64_t>(report.batch_size);
  }
  std::vector<double> Mean() const {
    std::vector<double> mean(sums_.size(), 0.0);
    if (samples_ == 0) return {};
    for (size_t t = 0; t < sums_.size(); ++t) mean[t] = sums_[t] / static_cast<double>(samples_);
    return mean;
  }
  uint64_t samples() const { return samples_; }

 private:
  std::vector<double> sums_;  // per task: loss × batch size, summed over the epoch's steps
  uint64_t samples_ = 0;
};

}  // namespace mtps
