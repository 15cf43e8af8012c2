// Tests of how the client routes keys: jump consistent hash (range, balance, minimal
// movement when a server is added) and KeyRouting (grouping, slots, duplicates).
#include "ps/key_routing.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "ps/initializer.h"
#include "ps/jump_hash.h"

namespace mtps::ps {
namespace {

TEST(JumpConsistentHash, StaysInRangeAndSpreadsEvenly) {
  constexpr int kServers = 5;
  constexpr int kKeys = 100000;
  std::vector<int> count(kServers, 0);
  for (uint64_t k = 0; k < kKeys; ++k) {
    const int32_t s = JumpConsistentHash(k, kServers);  // sequential keys, the hard case
    ASSERT_GE(s, 0);
    ASSERT_LT(s, kServers);
    ++count[s];
  }
  for (int s = 0; s < kServers; ++s) {
    EXPECT_NEAR(count[s], kKeys / kServers, kKeys / kServers / 10) << "server " << s;
  }
  EXPECT_EQ(JumpConsistentHash(12345, 1), 0);
}

TEST(JumpConsistentHash, AddingAServerMovesOnlyKeysToIt) {
  int moved = 0;
  constexpr int kKeys = 50000;
  for (uint64_t i = 0; i < kKeys; ++i) {
    const uint64_t key = Mix64(i);
    const int32_t before = JumpConsistentHash(key, 4);
    const int32_t after = JumpConsistentHash(key, 5);
    if (before != after) {
      EXPECT_EQ(after, 4) << "key " << key << " moved between old servers";
      ++moved;
    }
  }
  EXPECT_NEAR(moved, kKeys / 5, kKeys / 50);  // 1/(n+1) of the keys move
}

TEST(JumpConsistentHash, KnownValuesAreStable) {
  // Pinned: a change of the function would strand every stored row (and checkpoint) on
  // the wrong server after an upgrade, so it must not pass unnoticed.
  std::vector<int32_t> got;
  for (uint64_t key : {1ULL, 2ULL, 3ULL, 0xdeadbeefULL, 0xffffffffffffffffULL})
    got.push_back(JumpConsistentHash(key, 1000));
  EXPECT_EQ(got, (std::vector<int32_t>{549, 338, 961, 285, 313}));
  EXPECT_EQ(JumpConsistentHash(0, 10), 0);
}

TEST(JumpConsistentHash, ClosedFormsEqualThePublishedLoop) {
  // One and two servers take a closed form; every key must land where the loop puts it.
  std::vector<uint64_t> keys = {0, 1, 2, 3, ~0ULL, ~0ULL - 1, 1ULL << 63, (1ULL << 63) - 1};
  for (uint64_t i = 0; i < 200000; ++i) keys.push_back(Mix64(i));
  for (uint64_t i = 0; i < 1000; ++i) keys.push_back(i);
  // Keys whose first step lands right at the 2-bucket boundary (d = 2^30 - 1, 2^30, 2^30 + 1
  // with d = (key * M + 1) >> 33): key = (target - 1) * M^-1 mod 2^64.
  constexpr uint64_t kM = 2862933555777941757ULL;
  uint64_t inverse = kM;  // Newton's iteration doubles the correct low bits each step
  for (int i = 0; i < 6; ++i) inverse *= 2 - kM * inverse;
  ASSERT_EQ(kM * inverse, 1u);
  for (uint64_t d : {(1ULL << 30) - 1, 1ULL << 30, (1ULL << 30) + 1})
    for (uint64_t low : {0ULL, 1ULL, (1ULL << 33) - 1}) keys.push_back(((d << 33 | low) - 1) * inverse);
  for (int32_t buckets : {1, 2, 3, 7}) {
    for (uint64_t key : keys) {
      ASSERT_EQ(JumpConsistentHash(key, buckets), JumpConsistentHashLoop(key, buckets))
          << "key " << key << ", " << buckets << " buckets";
    }
  }
}

TEST(DenseBlockOwner, IsRoundRobinById) {
  EXPECT_EQ(DenseBlockOwner(0, 3), 0);
  EXPECT_EQ(DenseBlockOwner(4, 3), 1);
  EXPECT_EQ(DenseBlockOwner(8, 3), 2);
  EXPECT_EQ(DenseBlockOwner(7, 1), 0);
}

TEST(KeyRouting, GroupsUniqueKeysByOwnerInFirstSeenOrder) {
  std::vector<uint64_t> keys;
  for (uint64_t i = 0; i < 1000; ++i) keys.push_back(Mix64(i));
  KeyRouting routing;
  routing.Build(keys, 3);
  EXPECT_EQ(routing.num_keys(), keys.size());
  EXPECT_EQ(routing.num_unique(), keys.size());
  EXPECT_TRUE(routing.duplicates().empty());
  size_t total = 0;
  for (int32_t s = 0; s < 3; ++s) {
    auto positions = routing.positions(s);
    EXPECT_GT(positions.size(), 200u);
    total += positions.size();
    for (size_t j = 0; j < positions.size(); ++j) {
      EXPECT_EQ(JumpConsistentHash(keys[positions[j]], 3), s);
      EXPECT_EQ(routing.server_of(positions[j]), s);
      EXPECT_EQ(routing.slot_of(positions[j]), j);
      if (j > 0) {
        EXPECT_LT(positions[j - 1], positions[j]) << "slots keep the caller's order";
      }
    }
  }
  EXPECT_EQ(total, keys.size());
}

TEST(KeyRouting, SendsARepeatedKeyOnceAndRemembersEveryPosition) {
  const std::vector<uint64_t> keys = {7, 9, 7, 11, 9, 9, 7, 13};
  KeyRouting routing;
  routing.Build(keys, 2);
  EXPECT_EQ(routing.num_unique(), 4u);
  std::multiset<uint64_t> routed;
  for (int32_t s = 0; s < 2; ++s)
    for (uint32_t pos : routing.positions(s)) routed.insert(keys[pos]);
  EXPECT_EQ(routed, (std::multiset<uint64_t>{7, 9, 11, 13}));

  std::map<uint32_t, uint32_t> dup;  // position -> first position
  for (auto d : routing.duplicates()) dup[d.position] = d.first_position;
  EXPECT_EQ(dup, (std::map<uint32_t, uint32_t>{{2, 0}, {4, 1}, {5, 1}, {6, 0}}));
  for (auto [pos, first] : dup) {
    EXPECT_EQ(routing.server_of(pos), routing.server_of(first));
    EXPECT_EQ(routing.slot_of(pos), routing.slot_of(first));
  }
}

TEST(KeyRouting, ReuseForAnotherRequestForgetsTheFirst) {
  KeyRouting routing;
  routing.Build(std::vector<uint64_t>{1, 2, 3, 1}, 4);
  routing.Build(std::vector<uint64_t>{5, 6}, 2);
  EXPECT_EQ(routing.num_keys(), 2u);
  EXPECT_EQ(routing.num_unique(), 2u);
  EXPECT_TRUE(routing.duplicates().empty());
  EXPECT_EQ(routing.unique_count(0) + routing.unique_count(1), 2u);
  routing.Build(std::vector<uint64_t>{}, 2);
  EXPECT_EQ(routing.num_unique(), 0u);
}

// A caller that promises unique keys gets the same routing without the search for
// repeats, also when it reuses a routing that held repeats before.
TEST(KeyRouting, UniqueKeysRouteAsTheGeneralPathDoes) {
  std::vector<uint64_t> keys;
  for (uint64_t i = 0; i < 5000; ++i) keys.push_back(Mix64(i * 7 + 3));
  for (int32_t servers : {1, 2, 5}) {
    KeyRouting general, unique;
    general.Build(keys, servers);
    unique.Build(std::vector<uint64_t>{9, 9, 9}, servers);  // leftovers must not matter
    unique.Build(keys, servers, /*keys_unique=*/true);
    ASSERT_EQ(unique.num_unique(), keys.size());
    EXPECT_TRUE(unique.duplicates().empty());
    for (int32_t s = 0; s < servers; ++s) {
      const auto a = general.positions(s), b = unique.positions(s);
      ASSERT_EQ(std::vector<uint32_t>(a.begin(), a.end()), std::vector<uint32_t>(b.begin(), b.end()))
          << servers << " servers, server " << s;
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(unique.server_of(i), general.server_of(i));
      EXPECT_EQ(unique.slot_of(i), general.slot_of(i));
    }
  }
}

}  // namespace
}  // namespace mtps::ps
