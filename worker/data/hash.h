// 64-bit hashing for the data path: XXH64 (the public xxHash algorithm, written out here
// so no dependency is added) for feature keys and .mtb checksums, and a cheap mixer.
//
//   uint64_t seed = Xxh64String("user_id");
//   uint64_t key = Xxh64String(value, seed);
//   uint64_t sum = Xxh64(payload, bytes);          // row-group checksum
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace mtps {

namespace xxh64_internal {
inline constexpr uint64_t kP1 = 11400714785074694791ULL;
inline constexpr uint64_t kP2 = 14029467366897019727ULL;
inline constexpr uint64_t kP3 = 1609587929392839161ULL;
inline constexpr uint64_t kP4 = 9650029242287828579ULL;
inline constexpr uint64_t kP5 = 2870177450012600261ULL;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (x86-64, arm64), as the .mtb format is
}
inline uint32_t Load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kP2;
  acc = Rotl(acc, 31);
  return acc * kP1;
}
inline uint64_t MergeRound(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * kP1 + kP4;
}
}  // namespace xxh64_internal

// XXH64 of `len` bytes; equal to the reference implementation's XXH64(data, len, seed).
inline uint64_t Xxh64(const void* data, size_t len, uint64_t seed = 0) {
  using namespace xxh64_internal;
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + len;
  uint64_t h;
  if (len >= 32) {
    const unsigned char* const limit = end - 32;
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    do {
      v1 = Round(v1, Load64(p));
      v2 = Round(v2, Load64(p + 8));
      v3 = Round(v3, Load64(p + 16));
      v4 = Round(v4, Load64(p + 24));
      p += 32;
    } while (p <= limit);
    h = Rotl(v1, 1) + Rotl(v2, 7) + Rotl(v3, 12) + Rotl(v4, 18);
    h = MergeRound(h, v1);
    h = MergeRound(h, v2);
    h = MergeRound(h, v3);
    h = MergeRound(h, v4);
  } else {
    h = seed + kP5;
  }
  h += static_cast<uint64_t>(len);
  while (p + 8 <= end) {
    h ^= Round(0, Load64(p));
    h = Rotl(h, 27) * kP1 + kP4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= static_cast<uint64_t>(Load32(p)) * kP1;
    h = Rotl(h, 23) * kP2 + kP3;
    p += 4;
  }
  while (p < end) {
    h ^= (*p) * kP5;
    h = Rotl(h, 11) * kP1;
    ++p;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// A distinct name: with an overload, Xxh64("literal", seed) would bind to (data, len).
inline uint64_t Xxh64String(std::string_view s, uint64_t seed = 0) { return Xxh64(s.data(), s.size(), seed); }

// splitmix64 finalizer: spreads already-random 64-bit keys over hash-table slots and
// derives independent random streams from (seed, index).
inline uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace mtps
