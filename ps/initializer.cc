// RowInitializer: counter-based random initial rows. Element i of key k's row is drawn
// from SplitMix64 of (seed, key, i), so no state is kept and any element can be recomputed.
#include "ps/initializer.h"

#include <cmath>

namespace mtps::ps {
namespace {

// 24 random bits -> a float in (0, 1]: never 0, so log() in Box-Muller is finite.
inline float UnitOpen(uint64_t bits) {
  return (static_cast<float>(bits >> 40) + 1.0f) * (1.0f / 16777216.0f);
}

}  // namespace

void RowInitializer::Fill(uint64_t key, float* out, int dim) const {
  const uint64_t base = Mix64(seed_ ^ Mix64(key));
  switch (spec_.type) {
    case InitializerSpec::Type::kZeros:
      for (int i = 0; i < dim; ++i) out[i] = 0.0f;
      return;
    case InitializerSpec::Type::kUniform:
      for (int i = 0; i < dim; ++i) {
        const float u = UnitOpen(Mix64(base + static_cast<uint64_t>(i)));
        out[i] = (2.0f * u - 1.0f) * spec_.range;
      }
      return;
    case InitializerSpec::Type::kNormal:
      // Box-Muller: each pair (u1, u2) gives two independent normals.
      for (int i = 0; i < dim; i += 2) {
        const uint64_t r = Mix64(base + static_cast<uint64_t>(i));
        const float u1 = UnitOpen(r);
        const float u2 = UnitOpen(r << 24);
        const float radius = std::sqrt(-2.0f * std::log(u1)) * spec_.stddev;
        const float angle = 6.28318530717958647692f * u2;
        out[i] = radius * std::cos(angle);
        if (i + 1 < dim) out[i + 1] = radius * std::sin(angle);
      }
      return;
  }
}

}  // namespace mtps::ps
