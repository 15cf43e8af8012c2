// RowIndex's sorted scan: entries sharing a tag, lookups found ahead of time (FindTag +
// version), runs that reach the end of the overflow area, and the last home buckets.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ps/key_hash.h"
#include "ps/row_index.h"

namespace mtps::ps {
namespace {

// A hash with a chosen tag (the high 32 bits); the low bits never matter to the index.
uint64_t HashWithTag(uint32_t tag, uint32_t low = 0) { return (uint64_t{tag} << 32) | low; }

TEST(RowIndexScanTest, KeysSharingATagAreToldApartByTheirRows) {
  RowIndex index(64);
  std::vector<uint64_t> slot_keys = {100, 200, 300, 400};
  auto key_of = [&](uint32_t slot) { return slot_keys[slot]; };
  for (uint32_t slot = 0; slot < 3; ++slot) index.Insert(HashWithTag(0x12345678, slot), slot);
  index.Insert(HashWithTag(0x12345679), 3);
  for (uint32_t slot = 0; slot < 3; ++slot) {
    const size_t pos = index.Find(slot_keys[slot], HashWithTag(0x12345678), key_of);
    ASSERT_NE(pos, RowIndex::kNotFound);
    EXPECT_EQ(index.SlotAt(pos), slot);
  }
  EXPECT_EQ(index.Find(999, HashWithTag(0x12345678), key_of), RowIndex::kNotFound);
  EXPECT_EQ(index.Find(999, HashWithTag(0x12345677), key_of), RowIndex::kNotFound);
  // Erasing the middle one of the three keeps the other two and the neighbour findable.
  index.EraseAt(index.Find(200, HashWithTag(0x12345678), key_of));
  EXPECT_EQ(index.Find(200, HashWithTag(0x12345678), key_of), RowIndex::kNotFound);
  EXPECT_NE(index.Find(100, HashWithTag(0x12345678), key_of), RowIndex::kNotFound);
  EXPECT_NE(index.Find(300, HashWithTag(0x12345678), key_of), RowIndex::kNotFound);
  EXPECT_NE(index.Find(400, HashWithTag(0x12345679), key_of), RowIndex::kNotFound);
}

TEST(RowIndexScanTest, APositionFoundAheadIsExactWhileTheVersionHolds) {
  RowIndex index(16);
  std::vector<uint64_t> slot_keys;
  auto key_of = [&](uint32_t slot) { return slot_keys[slot]; };
  for (uint32_t i = 0; i < 1000; ++i) {
    slot_keys.push_back(i * 31 + 7);
    index.Insert(IndexHash(slot_keys.back()), i);
  }
  const uint64_t key = slot_keys[500];
  const size_t tag_pos = index.FindTag(IndexHash(key));
  const uint64_t version = index.version();
  ASSERT_NE(tag_pos, RowIndex::kNotFound);
  EXPECT_EQ(index.SlotAt(index.MatchFrom(tag_pos, key, key_of)), 500u);
  EXPECT_EQ(index.FindTag(IndexHash(key)), tag_pos);
  EXPECT_EQ(index.version(), version) << "lookups do not change the version";
  // Every mutation changes it: inserts (which may shift the run) and erases.
  slot_keys.push_back(123456789);
  index.Insert(IndexHash(slot_keys.back()), 1000);
  EXPECT_NE(index.version(), version);
  const uint64_t after_insert = index.version();
  index.EraseAt(index.Find(slot_keys[3], IndexHash(slot_keys[3]), key_of));
  EXPECT_NE(index.version(), after_insert);
}

// Tags at the very top of the range home in the last bucket, so their run lives in the
// overflow area; past it the index grows instead of wrapping, and every key stays findable.
TEST(RowIndexScanTest, RunsPastTheOverflowAreaGrowTheIndex) {
  RowIndex index(16);
  const size_t buckets_before = index.capacity();
  std::vector<uint64_t> slot_keys;
  auto key_of = [&](uint32_t slot) { return slot_keys[slot]; };
  // 40 keys, all with the largest possible tag (0xffffffff is the empty marker's and is
  // folded into the one below it), and so the same home: one run of 40.
  for (uint32_t i = 0; i < 40; ++i) {
    slot_keys.push_back(5000 + i);
    index.Insert(HashWithTag(0xffffffff, i), i);
  }
  EXPECT_GT(index.capacity(), buckets_before);
  for (uint32_t i = 0; i < 40; ++i) {
    const size_t pos = index.Find(slot_keys[i], HashWithTag(0xfffffffe), key_of);
    ASSERT_NE(pos, RowIndex::kNotFound) << i;
    EXPECT_EQ(index.SlotAt(pos), i);
  }
  EXPECT_EQ(index.size(), 40u);
}

TEST(RowIndexScanTest, ScansSeeEveryEntryOnceWithRandomTags) {
  RowIndex index(16);
  std::mt19937_64 rng(11);
  std::vector<uint64_t> slot_keys;
  for (uint32_t i = 0; i < 50000; ++i) {
    slot_keys.push_back(rng());
    index.Insert(IndexHash(slot_keys.back()), i);
  }
  std::vector<int> seen(slot_keys.size(), 0);
  for (size_t pos = 0; pos < index.capacity(); ++pos)
    if (index.Occupied(pos)) ++seen[index.SlotAt(pos)];
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << i;
}

}  // namespace
}  // namespace mtps::ps
