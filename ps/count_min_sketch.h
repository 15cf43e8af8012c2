// CountMinSketch: approximate sighting counts of keys that have no row yet, for admission.
// Conservative update (only the minimal counters grow), so counts overestimate little.
//
//   CountMinSketch sketch(1 << 16);
//   uint32_t seen = sketch.Increment(key);   // count including this sighting
//   if (seen >= admit_min_count) { /* give the key a row */ }
//
// Four rows of `width` 32-bit counters, each row indexed by independent bits of the key.
// Counts age: after 8 * width increments every counter is halved (as in TinyLFU), so keys
// seen long ago do not pile up into a spurious admission forever.
// Thread-safety: none; used by one table, which serialises its calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ps/page_memory.h"

namespace mtps::ps {

class CountMinSketch {
 public:
  static constexpr int kDepth = 4;

  // `width` is rounded up to a power of two (at least 64).
  explicit CountMinSketch(size_t width);

  // Adds one sighting of `key` and returns its estimated count (>= the true count since
  // the last aging, saturating at UINT32_MAX).
  uint32_t Increment(uint64_t key);
  uint32_t Estimate(uint64_t key) const;

  size_t width() const { return mask_ + 1; }
  size_t MemoryBytes() const { return buffer_.bytes(); }
  // MemoryBytes() of a sketch constructed with `width`.
  static size_t BytesFor(size_t width);

 private:
  void Age();

  PageBuffer buffer_;
  uint32_t* counters_ = nullptr;  // kDepth rows of width counters
  size_t mask_ = 0;
  uint64_t increments_ = 0;
  uint64_t age_every_ = 0;
};

}  // namespace mtps::ps
