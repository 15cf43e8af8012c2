// Which parameter server owns a sparse key or a dense block: jump consistent hash
// (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014).
//
//   int32_t owner = JumpConsistentHash(key, num_servers);     // sparse key -> server
//   int32_t block_owner = DenseBlockOwner(block_id, num_servers);
//
// Pure functions; safe from any thread. Every process (client, server ownership checks,
// scheduler's cluster view with Partition.jumpHash) must use these, never a copy.
#pragma once

#include <cstdint>

namespace mtps::ps {

// The algorithm as published, for any `num_buckets` >= 1. Its loop runs a data-dependent
// number of times with a division in each, so callers use JumpConsistentHash below.
inline int32_t JumpConsistentHashLoop(uint64_t key, int32_t num_buckets) {
  int64_t bucket = -1;
  int64_t next = 0;
  while (next < num_buckets) {
    bucket = next;
    key = key * 2862933555777941757ULL + 1;
    next = static_cast<int64_t>(static_cast<double>(bucket + 1) *
                                (static_cast<double>(int64_t{1} << 31) /
                                 static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<int32_t>(bucket);
}

// Maps `key` to a bucket in [0, num_buckets). Moving from n to n+1 buckets moves only
// 1/(n+1) of the keys. The multiplier makes sequential keys spread as well as hashed
// ones. `num_buckets` must be >= 1. Equal to JumpConsistentHashLoop for every key.
inline int32_t JumpConsistentHash(uint64_t key, int32_t num_buckets) {
  // One and two buckets in closed form, without the loop's mispredicted exit and
  // division (a quarter of a 2-server client's pull time went there). With two: the first
  // step jumps past bucket 1 iff 2^31 / (d + 1) >= 2 for d = (key * M + 1) >> 33, i.e.
  // iff d < 2^30; otherwise it lands on 1 and the next step always leaves.
  if (num_buckets == 1) return 0;
  if (num_buckets == 2) return static_cast<int32_t>((key * 2862933555777941757ULL + 1) >> 63);
  return JumpConsistentHashLoop(key, num_buckets);
}

// Dense blocks go round-robin by id (block id % num_servers): models have few blocks
// with consecutive ids, and round-robin spreads them evenly where a hash of so few ids
// would not. The server count is fixed for a job (a failed server restarts under its
// rank), so consistency under resizing buys nothing here.
inline int32_t DenseBlockOwner(uint32_t block_id, int32_t num_servers) {
  return static_cast<int32_t>(block_id % static_cast<uint32_t>(num_servers));
}

}  // namespace mtps::ps
