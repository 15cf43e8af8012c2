// Hashes of 64-bit feature keys inside one server: which shard thread owns a key, and
// where a key lands in a table's hash index. Both are independent of the jump hash that
// picks the server, and of each other, so no level sees a skewed key population.
//
//   uint32_t shard = ShardOfKey(key, num_shards);   // in [0, num_shards)
//   uint64_t h = IndexHash(key);                    // home slot and tag in a RowIndex
#pragma once

#include <cstdint>

#include "base/hash.h"

namespace mtps::ps {

inline uint64_t IndexHash(uint64_t key) { return MixKey(key, 0x243f6a8885a308d3ULL); }

// Fast range reduction of 32 well-mixed bits: no division on the hot path.
inline uint32_t ShardOfKey(uint64_t key, uint32_t num_shards) {
  const uint64_t bits = MixKey(key, 0x13198a2e03707344ULL) >> 32;
  return static_cast<uint32_t>((bits * num_shards) >> 32);
}

}  // namespace mtps::ps
