// Tests of the data path's hashing: XXH64 against the reference implementation's values,
// and the key dedup map.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "worker/data/hash.h"
#include "worker/data/key_dedup.h"

namespace mtps {
namespace {

TEST(Xxh64, MatchesReferenceImplementation) {
  // Values from libxxhash 0.8.1 (XXH64(data, len, seed)).
  EXPECT_EQ(Xxh64("", 0, 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(Xxh64("abc", 3, 0), 0x44bc2cf5ad770999ULL);
  EXPECT_EQ(Xxh64String(std::string_view("user_id\0", 8)), 0xe5a6ad54dec8a0beULL);
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(Xxh64String(bytes, 5), 0x9c502a83dcb7c69eULL);
  EXPECT_EQ(Xxh64String("0123456789abcdefghijklmnopqrstuvwxyz", 0x9E3779B97F4A7C15ULL), 0x4bc30215fecdf207ULL);
}

TEST(KeyDedup, GivesDenseIndicesAndForgetsOnReset) {
  KeyDedup dedup;
  std::mt19937_64 rng(3);
  for (int round = 0; round < 3; ++round) {
    std::vector<uint64_t> keys, unique;
    for (int i = 0; i < 5000; ++i) keys.push_back(rng() % 1500);  // many duplicates
    dedup.Reset(keys.size());
    std::vector<int32_t> index;
    for (uint64_t k : keys) index.push_back(dedup.Insert(k, &unique));
    std::set<uint64_t> distinct(keys.begin(), keys.end());
    EXPECT_EQ(unique.size(), distinct.size());
    EXPECT_EQ(std::set<uint64_t>(unique.begin(), unique.end()).size(), unique.size());
    for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(unique[index[i]], keys[i]);
    // First occurrence order: index i is given to the i-th new key.
    EXPECT_EQ(index[0], 0);
  }
}

}  // namespace
}  // namespace mtps
