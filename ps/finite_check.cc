// FirstNonFinite: x * 0 is 0 for every finite x and NaN for NaN and +-Inf, so one
// branch-free, vectorized pass decides; only a bad buffer is searched element by element.
#include "ps/finite_check.h"

#include <cmath>

namespace mtps::ps {

[[gnu::target_clones("avx2", "default")]] size_t FirstNonFinite(const float* values, size_t n) {
  // Independent lanes: the compiler may vectorize without reassociating float adds.
  constexpr size_t kLanes = 16;
  float lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) lanes[l] += values[i + l] * 0.0f;
  }
  for (; i < n; ++i) lanes[0] += values[i] * 0.0f;
  float probe = 0.0f;
  for (size_t l = 0; l < kLanes; ++l) probe += lanes[l];
  if (probe == 0.0f) return n;
  for (i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) return i;
  }
  return n;
}

}  // namespace mtps::ps
