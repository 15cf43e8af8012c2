// FirstOutOfRange: one branch-free, vectorized pass counts the values with !(|v| <= limit)
// (true for NaN too); only a bad buffer is then searched element by element.
#include "ps/finite_check.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

namespace mtps::ps {

[[gnu::target_clones("avx2", "default")]] size_t FirstOutOfRange(const float* values, size_t n,
                                                                  float limit) {
  limit = std::min(limit, FLT_MAX);  // NaN limit: everything is out of range, as it should
  // Independent lanes so the compiler vectorizes without reordering anything.
  constexpr size_t kLanes = 16;
  uint32_t lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) lanes[l] |= !(std::fabs(values[i + l]) <= limit);
  }
  for (; i < n; ++i) lanes[0] |= !(std::fabs(values[i]) <= limit);
  uint32_t bad = 0;
  for (size_t l = 0; l < kLanes; ++l) bad |= lanes[l];
  if (bad == 0) return n;
  for (i = 0; i < n; ++i) {
    if (!(std::fabs(values[i]) <= limit)) return i;
  }
  return n;
}

size_t FirstNonFinite(const float* values, size_t n) {
  return FirstOutOfRange(values, n, FLT_MAX);
}

}  // namespace mtps::ps
