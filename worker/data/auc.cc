// ExactAuc: ranks the scores once and sums the positives' ranks, averaging ranks over
// groups of tied scores.
#include "worker/data/auc.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace mtps {

double ExactAuc(const float* scores, const float* labels, size_t n) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  double positives = 0, rank_sum = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    double group_positives = 0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      if (labels[order[j]] > 0.5f) group_positives += 1;
      ++j;
    }
    // Ranks i+1 .. j share their mean.
    rank_sum += group_positives * (static_cast<double>(i + 1 + j) / 2.0);
    positives += group_positives;
    i = j;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

}  // namespace mtps
