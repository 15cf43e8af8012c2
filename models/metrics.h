// Evaluation metrics per task: exact AUC (ties get average ranks), log loss, mean
// squared error, and StreamingAuc, a fixed-memory AUC for evaluation sets too large to
// sort, with a computable bound on its error.
//
//   MTPS_ASSIGN_OR_RETURN(double auc, ExactAuc(predictions, labels));
//   StreamingAuc s;                        // 2^16 buckets over [0, 1]
//   for (...) s.Add(p, y);
//   double a = s.Auc(), err = s.ErrorBound();   // |a - exact AUC| <= err
//
// Labels are positive when > 0.5. Functions are pure; a StreamingAuc is not
// thread-safe (merge per-thread instances with Merge()).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace mtps::models {

// Area under the ROC curve: the probability that a random positive scores above a
// random negative, ties counted one half (Mann-Whitney U with average ranks).
// Fails when the sizes differ or a class is absent.
StatusOr<double> ExactAuc(std::span<const float> predictions, std::span<const float> labels);
// Mean binary cross-entropy; predictions are clipped to [eps, 1 - eps], eps = 1e-7.
StatusOr<double> LogLoss(std::span<const float> predictions, std::span<const float> labels);
StatusOr<double> MeanSquaredError(std::span<const float> predictions,
                                  std::span<const float> labels);

// AUC from a histogram of predictions in equal-width buckets over [lo, hi] (values
// outside are clamped into the end buckets). Pairs in different buckets are ordered
// exactly; pairs sharing a bucket are counted as ties (1/2). As a pair's true
// contribution is 0, 1/2 or 1, the error is at most half the fraction of positive-
// negative pairs that share a bucket:
//   |Auc() - exact AUC| <= ErrorBound() = sum_b pos_b * neg_b / (2 * P * N),
// which shrinks as buckets narrow (for smooth score densities, about 1/(2 * buckets)
// times the overlap of the two classes' densities).
class StreamingAuc {
 public:
  explicit StreamingAuc(int buckets = 1 << 16, double lo = 0.0, double hi = 1.0);

  void Add(float prediction, float label);
  void Add(std::span<const float> predictions, std::span<const float> labels);
  // Adds another histogram of the same shape.
  Status Merge(const StreamingAuc& other);
  void Clear();

  uint64_t positives() const { return positives_; }
  uint64_t negatives() const { return negatives_; }
  // Fails when a class is absent.
  StatusOr<double> Auc() const;
  double ErrorBound() const;

 private:
  int Bucket(float prediction) const;

  double lo_, hi_, scale_;
  std::vector<uint64_t> pos_, neg_;
  uint64_t positives_ = 0, negatives_ = 0;
};

}  // namespace mtps::models
