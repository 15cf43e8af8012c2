// SplitMix64: the small, fast, seedable random stream used for shuffling and data
// generation; the same seed gives the same numbers on every platform (unlike the
// distributions of <random>, whose algorithms the standard leaves open).
//
//   SplitMix64 rng(Mix64(seed) ^ epoch);
//   uint64_t i = rng.Below(n);   double u = rng.Uniform();
//
// Thread-safety: none; one stream per thread.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

#include "base/hash.h"

namespace mtps {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64); }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller).
  double Normal() {
    const double u1 = 1.0 - Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Fisher-Yates shuffle of data[0..n).
  template <typename T>
  void Shuffle(T* data, uint64_t n) {
    for (uint64_t i = n; i > 1; --i) std::swap(data[i - 1], data[Below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace mtps
