// Exact AUC by sorting with average ranks for ties, log loss, MSE, and the histogram
// (streaming) AUC with its error bound.
#include "models/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mtps::models {
namespace {

Status CheckSizes(std::span<const float> predictions, std::span<const float> labels,
                  const char* what) {
  if (predictions.size() != labels.size()) {
    return InvalidArgument(std::string(what) + ": " + std::to_string(predictions.size()) +
                           " predictions but " + std::to_string(labels.size()) + " labels");
  }
  if (predictions.empty()) return InvalidArgument(std::string(what) + ": no samples");
  return Status::OK();
}

}  // namespace

StatusOr<double> ExactAuc(std::span<const float> predictions, std::span<const float> labels) {
  MTPS_RETURN_IF_ERROR(CheckSizes(predictions, labels, "AUC"));
  const size_t n = predictions.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return predictions[a] < predictions[b]; });
  double positive_rank_sum = 0;
  uint64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && predictions[order[j]] == predictions[order[i]]) ++j;
    // Ranks i+1 .. j share their average.
    const double rank = 0.5 * double(i + 1 + j);
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]] > 0.5f) {
        positive_rank_sum += rank;
        ++positives;
      }
    }
    i = j;
  }
  const uint64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) {
    return InvalidArgument("AUC is undefined with " + std::to_string(positives) +
                           " positives and " + std::to_string(negatives) + " negatives");
  }
  const double p = double(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * double(negatives));
}

StatusOr<double> LogLoss(std::span<const float> predictions, std::span<const float> labels) {
  MTPS_RETURN_IF_ERROR(CheckSizes(predictions, labels, "log loss"));
  constexpr double kEps = 1e-7;
  double sum = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double p = std::clamp(double(predictions[i]), kEps, 1 - kEps);
    const double y = labels[i];
    sum -= y * std::log(p) + (1 - y) * std::log(1 - p);
  }
  return sum / predictions.size();
}

StatusOr<double> MeanSquaredError(std::span<const float> predictions,
                                  std::span<const float> labels) {
  MTPS_RETURN_IF_ERROR(CheckSizes(predictions, labels, "MSE"));
  double sum = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double d = double(predictions[i]) - labels[i];
    sum += d * d;
  }
  return sum / predictions.size();
}

StatusOr<double> StreamingAuc::Auc() const {
  if (positives_ == 0 || negatives_ == 0) {
    return InvalidArgument("AUC is undefined with " + std::to_string(positives_) +
                           " positives and " + std::to_string(negatives_) + " negatives");
  }
  // Walk buckets upwards: each positive beats every negative in lower buckets and ties
  // with the negatives in its own.
  double wins = 0;
  uint64_t negatives_below = 0;
  for (size_t b = 0; b < pos_.size(); ++b) {
    wins += double(pos_[b]) * (double(negatives_below) + 0.5 * double(neg_[b]));
    negatives_below += neg_[b];
  }
  return wins / (double(positives_) * double(negatives_));
}

double StreamingAuc::ErrorBound() const {
  if (positives_ == 0 || negatives_ == 0) return 1.0;
  double shared = 0;
  for (size_t b = 0; b < pos_.size(); ++b) shared += double(pos_[b]) * double(neg_[b]);
  return shared / (2.0 * double(positives_) * double(negatives_));
}

StreamingAuc::StreamingAuc(int buckets, double lo, double hi)
    : lo_(lo), hi_(hi), scale_(buckets / (hi - lo)), pos_(buckets), neg_(buckets) {}

int StreamingAuc::Bucket(float prediction) const {
  const double b = std::floor((double(prediction) - lo_) * scale_);
  const int last = static_cast<int>(pos_.size()) - 1;
  if (!(b >= 0)) return 0;  // also NaN
  return b > last ? last : static_cast<int>(b);
}

void StreamingAuc::Add(float prediction, float label) {
  if (label > 0.5f) {
    ++pos_[Bucket(prediction)];
    ++positives_;
  } else {
    ++neg_[Bucket(prediction)];
    ++negatives_;
  }
}

void StreamingAuc::Add(std::span<const float> predictions, std::span<const float> labels) {
  const size_t n = std::min(predictions.size(), labels.size());
  for (size_t i = 0; i < n; ++i) Add(predictions[i], labels[i]);
}

Status StreamingAuc::Merge(const StreamingAuc& other) {
  if (other.pos_.size() != pos_.size() || other.lo_ != lo_ || other.hi_ != hi_) {
    return InvalidArgument("StreamingAuc::Merge: histograms of " +
                           std::to_string(other.pos_.size()) + " and " +
                           std::to_string(pos_.size()) + " buckets (or ranges) differ");
  }
  for (size_t b = 0; b < pos_.size(); ++b) {
    pos_[b] += other.pos_[b];
    neg_[b] += other.neg_[b];
  }
  positives_ += other.positives_;
  negatives_ += other.negatives_;
  return Status::OK();
}

void StreamingAuc::Clear() {
  std::fill(pos_.begin(), pos_.end(), 0);
  std::fill(neg_.begin(), neg_.end(), 0);
  positives_ = negatives_ = 0;
}

}  // namespace mtps::models
