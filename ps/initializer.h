// RowInitializer: the initial embedding of a key, a pure function of (table seed, key),
// so every server, every restart and every test computes the same values.
//
//   RowInitializer init(table_spec.initializer, table_spec.seed);
//   init.Fill(key, row, dim);   // row[i] depends only on (seed, key, i)
//
// Values come from a counter-based generator (splitmix64 of seed, key and the element
// index), mapped to U(-range, range) or, by Box-Muller, to N(0, stddev^2). Uniform and
// zeros use only exact float arithmetic; normal also uses logf/cosf/sinf, so every process
// built against the same libm (one container image) gets identical bits.
// Thread-safety: immutable; Fill may be called from any number of threads.
#pragma once

#include <cstdint>

#include "base/hash.h"
#include "protocol/job_spec.h"

namespace mtps::ps {

class RowInitializer {
 public:
  RowInitializer(const InitializerSpec& spec, uint64_t seed) : spec_(spec), seed_(seed) {}

  void Fill(uint64_t key, float* out, int dim) const;

  const InitializerSpec& spec() const { return spec_; }
  uint64_t seed() const { return seed_; }

 private:
  InitializerSpec spec_;
  uint64_t seed_;
};


}  // namespace mtps::ps
