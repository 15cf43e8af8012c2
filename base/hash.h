// The hashes every part shares: XXH64 (Debian's libxxhash) for feature strings and file
// checksums, splitmix64 for streams and already-random keys, a salted murmur3 finalizer
// for independent hash levels. Host and device code see the same integer mixers.
//
//   uint64_t key = Xxh64String(value, Xxh64String("user_id"));   // field-salted key
//   uint64_t sum = Xxh64(payload, bytes);                        // row-group checksum
//   uint64_t r = Mix64(seed ^ Mix64(index));                     // counter-based random
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <xxhash.h>

#if defined(__CUDACC__)
#define MTPS_HASH_HOST_DEVICE __host__ __device__
#else
#define MTPS_HASH_HOST_DEVICE
#endif

namespace mtps {

inline uint64_t Xxh64(const void* data, size_t len, uint64_t seed = 0) {
  return XXH64(data, len, seed);
}

// A distinct name: with an overload, Xxh64("literal", seed) would bind to (data, len).
inline uint64_t Xxh64String(std::string_view s, uint64_t seed = 0) {
  return XXH64(s.data(), s.size(), seed);
}

// splitmix64's output function: a fast, well-mixed bijection of 64-bit values.
MTPS_HASH_HOST_DEVICE constexpr uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Murmur3's 64-bit finalizer with a per-use salt: distinct salts give unrelated bits, so
// hash levels that see the same keys (server, shard thread, index slot) stay independent.
constexpr uint64_t MixKey(uint64_t key, uint64_t salt) {
  uint64_t x = key ^ salt;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace mtps
