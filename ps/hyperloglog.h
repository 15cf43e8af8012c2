// HyperLogLog: an estimate of the number of distinct 64-bit keys in a stream, in 2^p
// one-byte registers (16 KiB at the default p = 14, relative standard error 1.04/2^(p/2),
// about 0.8%). mtps-plan counts each table's distinct keys in one pass over the data.
//
//   HyperLogLog hll;                    // p = 14
//   for (uint64_t key : keys) hll.Add(key);
//   double distinct = hll.Estimate();
//   other.Merge(hll);                   // union of two streams (same p)
//
// Keys are mixed first, so structured keys (small integers) spread over the registers.
// Estimate() uses linear counting while many registers are still empty (Flajolet et
// al. 2007, with the small-range correction); 64-bit hashes need no large-range one.
// Thread-safety: none; one owner adds, const methods may run concurrently with each other.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace mtps::ps {

class HyperLogLog {
 public:
  static constexpr int kDefaultPrecision = 14;

  // `precision` (p) must be in [4, 18]; the constructor clamps it.
  explicit HyperLogLog(int precision = kDefaultPrecision);

  void Add(uint64_t key);
  void AddMany(const uint64_t* keys, size_t n) {
    for (size_t i = 0; i < n; ++i) Add(keys[i]);
  }
  double Estimate() const;
  // FAILED_PRECONDITION when the precisions differ.
  Status Merge(const HyperLogLog& other);

  int precision() const { return precision_; }
  // The relative standard error of Estimate(): 1.04 / sqrt(2^p).
  double RelativeError() const;

 private:
  int precision_;
  std::vector<uint8_t> registers_;
};

}  // namespace mtps::ps
