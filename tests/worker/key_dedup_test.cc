// Tests of the batch's key dedup map: dense first-occurrence indices, reset between batches.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "worker/data/key_dedup.h"

namespace mtps {
namespace {

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
