// KeyDedup: a reusable open-addressing hash map from 64-bit key to its index among the
// distinct keys seen since the last Reset(); what turns a batch's keys into a table's
// unique keys plus the inverse index (Batch::Field::unique_index).
//
//   KeyDedup dedup;
//   dedup.Reset(keys.size());
//   for (size_t i = 0; i < keys.size(); ++i) index[i] = dedup.Insert(keys[i], &unique);
//
// Reset() is O(1) (slots carry a generation stamp) and allocates only when a batch needs
// more slots than any before, so steady state allocates nothing. Thread-safety: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>


namespace mtps {

class KeyDedup {
 public:
  // Forgets all keys and makes room for up to `max_keys` distinct keys.
  void Reset(size_t max_keys) {
    size_t want = 16;
    int bits = 4;
    while (want < 2 * max_keys) {
      want <<= 1;
      ++bits;
    }
    if (want > slots_.size()) {
      slots_.assign(want, Slot{});
      generation_ = 0;
      shift_ = 64 - bits;
    }
    mask_ = slots_.size() - 1;
    if (++generation_ == 0) {  // stamps wrapped: clear them once every 2^32 resets
      for (Slot& s : slots_) s.generation = 0;
      generation_ = 1;
    }
  }

  // The index of `key` among the distinct keys since Reset(); a new key is appended to
  // `unique` and gets index unique->size() - 1.
  int32_t Insert(uint64_t key, std::vector<uint64_t>* unique) {
    // Fibonacci hashing: keys are already hashes, one multiply spreads any leftover pattern.
    size_t i = static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
    while (true) {
      Slot& s = slots_[i];
      if (s.generation != generation_) {
        s.generation = generation_;
        s.key = key;
        s.index = static_cast<int32_t>(unique->size());
        unique->push_back(key);
        return s.index;
      }
      if (s.key == key) return s.index;
      i = (i + 1) & mask_;
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t index = 0;
    uint32_t generation = 0;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 60;
  uint32_t generation_ = 0;
};

}  // namespace mtps
