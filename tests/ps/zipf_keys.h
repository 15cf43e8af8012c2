// ZipfKeys: a Zipf(s) sampler over ranks 1..n by rejection-inversion (Hormann and
// Derflinger 1996), O(1) per draw with no table, and ranks scattered into 64-bit keys.
//
//   ZipfKeys zipf(/*n=*/10'000'000, /*s=*/1.1, /*seed=*/7);
//   uint64_t key = zipf.NextKey();     // rank 1 is the most frequent key
//
// Shared by the ps tests and benchmarks/ps_table_bench.cc. Not thread-safe.
#pragma once

#include <cmath>
#include <cstdint>

#include "ps/initializer.h"

namespace mtps::ps::testing {

class ZipfKeys {
 public:
  ZipfKeys(uint64_t n, double s, uint64_t seed) : n_(n), s_(s), rng_(seed) {
    h_integral_x1_ = HIntegral(1.5) - 1.0;
    h_integral_n_ = HIntegral(static_cast<double>(n) + 0.5);
    threshold_ = 2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0));
  }

  uint64_t NextRank() {
    for (;;) {
      const double u = h_integral_n_ + Uniform() * (h_integral_x1_ - h_integral_n_);
      const double x = HIntegralInverse(u);
      double k = std::floor(x + 0.5);
      if (k < 1) k = 1;
      if (k > static_cast<double>(n_)) k = static_cast<double>(n_);
      if (k - x <= threshold_ || u >= HIntegral(k + 0.5) - H(k)) return static_cast<uint64_t>(k);
    }
  }
  static uint64_t KeyOfRank(uint64_t rank) { return Mix64(rank * 0x9e3779b97f4a7c15ULL); }
  uint64_t NextKey() { return KeyOfRank(NextRank()); }

 private:
  double Uniform() {
    rng_ = Mix64(rng_);
    return (static_cast<double>(rng_ >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  double H(double x) const { return std::exp(-s_ * std::log(x)); }
  double HIntegral(double x) const {
    const double log_x = std::log(x);
    return Helper2((1.0 - s_) * log_x) * log_x;
  }
  double HIntegralInverse(double x) const {
    double t = x * (1.0 - s_);
    if (t < -1.0) t = -1.0;
    return std::exp(Helper1(t) * x);
  }
  static double Helper1(double x) {  // log1p(x) / x
    return std::fabs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
  }
  static double Helper2(double x) {  // expm1(x) / x
    return std::fabs(x) > 1e-8 ? std::expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
  }

  uint64_t n_;
  double s_;
  uint64_t rng_;
  double h_integral_x1_;
  double h_integral_n_;
  double threshold_;
};

}  // namespace mtps::ps::testing
