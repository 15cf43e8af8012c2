// RowIndex (Robin Hood, backward-shift deletion) against std::unordered_map under heavy
// insert/erase churn, through growth; plus CRC32C and the Count-Min sketch.
#include "ps/row_index.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <vector>

#include "ps/count_min_sketch.h"
#include "base/crc32c.h"
#include "ps/key_hash.h"

namespace mtps::ps {
namespace {

// Keys inserted in the bucket order of another index (how a checkpoint is written and
// read back) all home in the first buckets of a small, growing index: without Reserve every
// insert walks that whole run; with it they spread as in the original.
TEST(RowIndexTest, KeysInAnotherIndexsOrderNeedReserveToStaySpread) {
  constexpr size_t kRows = 20000;
  RowIndex source(16);
  for (uint32_t slot = 0; slot < kRows; ++slot) source.Insert(IndexHash(slot + 1), slot);
  std::vector<uint32_t> in_bucket_order;  // the slots (= key - 1) as a scan meets them
  for (size_t pos = 0; pos < source.capacity(); ++pos)
    if (source.Occupied(pos)) in_bucket_order.push_back(source.SlotAt(pos));
  ASSERT_EQ(in_bucket_order.size(), kRows);

  RowIndex growing(16), reserved(16);
  reserved.Reserve(kRows);
  const size_t reserved_capacity = reserved.capacity();
  size_t growing_midway = 0, reserved_midway = 0;  // halfway, before the last growth
  for (size_t i = 0; i < in_bucket_order.size(); ++i) {
    const uint32_t slot = in_bucket_order[i];
    growing.Insert(IndexHash(slot + 1), slot);
    reserved.Insert(IndexHash(slot + 1), slot);
    if (i == kRows / 2) {
      growing_midway = growing.LongestProbe();
      reserved_midway = reserved.LongestProbe();
    }
  }
  EXPECT_EQ(reserved.capacity(), reserved_capacity) << "Reserve left room for every row";
  EXPECT_LE(reserved_midway, source.LongestProbe() + 8);
  EXPECT_LE(reserved.LongestProbe(), source.LongestProbe() + 8);
  EXPECT_GT(growing_midway, 50 * (source.LongestProbe() + 1))
      << "the clustering this test guards against no longer happens without Reserve";
  // Both still find every key.
  auto key_of = [](uint32_t slot) { return uint64_t{slot} + 1; };
  for (uint32_t slot = 0; slot < kRows; slot += 101) {
    EXPECT_NE(reserved.Find(slot + 1, IndexHash(slot + 1), key_of), RowIndex::kNotFound);
  }
}

// FindTag counts the tags below its own in windows of 8 with signed SSE2 compares on
// biased tags: runs much longer than a window, tags on both sides of 2^31 and the extremes
// 0 and 2^32 - 2 must all be found, and absent tags in the middle of a run must not.
TEST(RowIndexTest, FindsTagsInLongRunsAndAcrossTheSignBit) {
  RowIndex index(16);
  std::vector<uint64_t> hashes;
  for (uint64_t tag : {uint64_t{0}, uint64_t{1}, uint64_t{0x7ffffffe}, uint64_t{0x7fffffff},
                       uint64_t{0x80000000}, uint64_t{0x80000001}, uint64_t{0xfffffffd},
                       uint64_t{0xfffffffe}}) {
    // 40 keys per tag (the low 32 bits tell them apart) make runs of 40+ entries.
    for (uint64_t k = 0; k < 40; ++k) hashes.push_back(tag << 32 | (k * 2 + 1));
  }
  for (uint32_t slot = 0; slot < hashes.size(); ++slot) index.Insert(hashes[slot], slot);
  auto key_of = [&](uint32_t slot) { return hashes[slot]; };  // the key is its hash here
  for (uint32_t slot = 0; slot < hashes.size(); ++slot) {
    const size_t pos = index.Find(hashes[slot], hashes[slot], key_of);
    ASSERT_NE(pos, RowIndex::kNotFound) << std::hex << hashes[slot];
    EXPECT_EQ(index.SlotAt(pos), slot);
  }
  for (uint64_t tag : {uint64_t{2}, uint64_t{0x7ffffffd}, uint64_t{0x80000002},
                       uint64_t{0xfffffffc}}) {
    EXPECT_EQ(index.FindTag(tag << 32), RowIndex::kNotFound) << std::hex << tag;
  }
}

TEST(RowIndexTest, AgreesWithUnorderedMapUnderChurn) {
  RowIndex index(16);
  std::vector<uint64_t> slot_keys;
  std::vector<uint32_t> free_slots;
  std::unordered_map<uint64_t, uint32_t> reference;
  auto key_of = [&](uint32_t slot) { return slot_keys[slot]; };
  std::mt19937_64 rng(5);
  // Keys from a small range so inserts, hits, misses and erases all happen often.
  for (int op = 0; op < 300000; ++op) {
    const uint64_t key = rng() % 20000;
    const size_t pos = index.Find(key, IndexHash(key), key_of);
    auto it = reference.find(key);
    ASSERT_EQ(pos != RowIndex::kNotFound, it != reference.end()) << "op " << op;
    if (pos != RowIndex::kNotFound) {
      ASSERT_EQ(index.SlotAt(pos), it->second);
    }
    const bool erase = (rng() % 100) < (op < 150000 ? 30 : 60);  // grow, then shrink
    if (pos == RowIndex::kNotFound && !erase) {
      uint32_t slot;
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
        slot_keys[slot] = key;
      } else {
        slot = static_cast<uint32_t>(slot_keys.size());
        slot_keys.push_back(key);
      }
      index.Insert(IndexHash(key), slot);
      reference[key] = slot;
    } else if (pos != RowIndex::kNotFound && erase) {
      free_slots.push_back(index.SlotAt(pos));
      index.EraseAt(pos);
      reference.erase(it);
    }
    ASSERT_EQ(index.size(), reference.size());
  }
  // Every key is findable and every occupied bucket is a key of the reference.
  size_t occupied = 0;
  for (size_t p = 0; p < index.capacity(); ++p) {
    if (!index.Occupied(p)) continue;
    ++occupied;
    ASSERT_EQ(reference.at(slot_keys[index.SlotAt(p)]), index.SlotAt(p));
  }
  EXPECT_EQ(occupied, reference.size());
  for (const auto& [key, slot] : reference) {
    const size_t pos = index.Find(key, IndexHash(key), key_of);
    ASSERT_NE(pos, RowIndex::kNotFound);
    EXPECT_EQ(index.SlotAt(pos), slot);
  }
}

TEST(RowIndexTest, StaysBelowSevenEighthsLoadAndReportsItsPages) {
  RowIndex index(16);
  std::vector<uint64_t> keys;
  for (uint32_t i = 0; i < 100000; ++i) {
    keys.push_back(i * 7919ULL);
    index.Insert(IndexHash(keys.back()), i);
    ASSERT_LE(index.size() * 8, index.capacity() * 7);
  }
  EXPECT_EQ(index.MemoryBytes(), PageBuffer::RoundUpToPages(index.capacity() * 8));
  EXPECT_GE(index.size() * 10, index.capacity() * 7 - 160);  // grows by 1.25x, not 2x
  EXPECT_EQ(RowIndex::CapacityFor(100000), index.capacity());
}

TEST(CountMinSketchTest, NeverUndercountsAndRarelyOvercountsWhenWide) {
  CountMinSketch sketch(1 << 14);
  std::unordered_map<uint64_t, uint32_t> truth;
  std::mt19937_64 rng(8);
  for (int i = 0; i < 20000; ++i) {  // below the aging threshold (8 * width)
    const uint64_t key = rng() % 3000;
    const uint32_t est = sketch.Increment(key);
    ++truth[key];
    ASSERT_GE(est, truth[key]);
  }
  int exact = 0;
  for (const auto& [key, count] : truth) exact += sketch.Estimate(key) == count;
  EXPECT_GT(exact, static_cast<int>(truth.size() * 95 / 100));
}

TEST(CountMinSketchTest, AgingHalvesOldCounts) {
  CountMinSketch sketch(64);  // ages after 8 * 64 increments
  for (int i = 0; i < 100; ++i) sketch.Increment(1);
  EXPECT_GE(sketch.Estimate(1), 100u);
  for (int i = 0; i < 8 * 64; ++i) sketch.Increment(1000 + i);
  EXPECT_LT(sketch.Estimate(1), 100u);
}

}  // namespace
}  // namespace mtps::ps
