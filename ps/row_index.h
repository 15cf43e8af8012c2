// RowIndex: the flat open-addressing hash index of a table, key -> row slot number.
// Robin Hood linear probing, backward-shift deletion (no tombstones), growth by 1.25x.
//
//   RowIndex index;
//   auto key_of = [&](uint32_t slot) { return slab_key[slot]; };
//   uint64_t h = IndexHash(key);
//   size_t pos = index.Find(key, h, key_of);
//   if (pos == RowIndex::kNotFound) index.Insert(h, new_slot);
//   else index.EraseAt(pos);
//
// An entry is 8 bytes: the high 32 bits of the key's hash (the tag) and the slot. Keys
// themselves live in the rows, so the index costs 8 / load bytes per row; the tag filters
// almost every mismatch before the row is touched. The home bucket is derived from the
// tag alone (fastrange: tag * capacity >> 32), so growing and shifting never need the
// keys, and the capacity need not be a power of two: growing by 1.25x keeps the load
// between 0.7 and 7/8, i.e. 9 to 11.5 bytes per row. Robin Hood keeps probe runs short
// at that load and lets a miss stop early.
// Thread-safety: none; the owner serialises all calls (const calls may run concurrently
// with each other but not with a mutation).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include "ps/page_memory.h"

namespace mtps::ps {

class RowIndex {
 public:
  static constexpr size_t kNotFound = std::numeric_limits<size_t>::max();
  static constexpr uint32_t kEmptySlot = std::numeric_limits<uint32_t>::max();

  explicit RowIndex(size_t initial_capacity = 1024) {
    Allocate(initial_capacity < kMinCapacity ? kMinCapacity : initial_capacity);
  }

  // Position of `key` (whose IndexHash is `hash`), or kNotFound. `key_of(slot)` returns
  // the key stored in a slot.
  template <typename KeyOf>
  size_t Find(uint64_t key, uint64_t hash, const KeyOf& key_of) const {
    const uint32_t tag = TagOf(hash);
    size_t pos = Home(tag);
    for (size_t dist = 0;; ++dist) {
      const Entry e = entries_[pos];
      if (e.slot == kEmptySlot) return kNotFound;
      if (Distance(pos, e.tag) < dist) return kNotFound;  // Robin Hood: passed it
      if (e.tag == tag && key_of(e.slot) == key) return pos;
      pos = Next(pos);
    }
  }

  // Pulls the cache line of `hash`'s home bucket in ahead of a Find.
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&entries_[Home(TagOf(hash))]); }

  // The slot of the first entry whose tag matches `hash` (kEmptySlot if none), without
  // touching any row: a guess of where Find will land, to prefetch that row.
  uint32_t GuessSlot(uint64_t hash) const {
    const uint32_t tag = TagOf(hash);
    size_t pos = Home(tag);
    for (size_t dist = 0;; ++dist) {
      const Entry e = entries_[pos];
      if (e.slot == kEmptySlot || Distance(pos, e.tag) < dist) return kEmptySlot;
      if (e.tag == tag) return e.slot;
      pos = Next(pos);
    }
  }

  // Adds an entry for a key known to be absent. Grows (rehashes) past 7/8 load.
  void Insert(uint64_t hash, uint32_t slot) {
    if (size_ + 1 > max_size_) Grow();
    InsertNoGrow({TagOf(hash), slot});
    ++size_;
  }

  // Removes the entry at `pos` (from Find or a scan) by shifting its run back.
  void EraseAt(size_t pos) {
    size_t next = Next(pos);
    while (entries_[next].slot != kEmptySlot && Distance(next, entries_[next].tag) != 0) {
      entries_[pos] = entries_[next];
      pos = next;
      next = Next(next);
    }
    entries_[pos] = Entry{0, kEmptySlot};
    --size_;
  }

  // Bucket access for scans (eviction sampling, expiry sweeps, iteration).
  size_t capacity() const { return capacity_; }
  // Maps 64 random bits to a bucket, for sampling.
  size_t BucketOf(uint64_t random) const { return ((random >> 32) * capacity_) >> 32; }
  size_t Next(size_t pos) const { return pos + 1 == capacity_ ? 0 : pos + 1; }
  bool Occupied(size_t pos) const { return entries_[pos].slot != kEmptySlot; }
  uint32_t SlotAt(size_t pos) const { return entries_[pos].slot; }
  void SetSlotAt(size_t pos, uint32_t slot) { entries_[pos].slot = slot; }

  size_t size() const { return size_; }
  // The farthest any entry sits from its home bucket: what the slowest lookup walks.
  size_t LongestProbe() const {
    size_t longest = 0;
    for (size_t pos = 0; pos < capacity_; ++pos)
      if (entries_[pos].slot != kEmptySlot) longest = std::max(longest, Distance(pos, entries_[pos].tag));
    return longest;
  }
  size_t MemoryBytes() const { return buffer_.bytes(); }
  // The capacity the index needs to hold `rows` entries below its load limit.
  static size_t CapacityFor(size_t rows) {
    size_t cap = kMinCapacity;
    while (MaxSizeFor(cap) < rows) cap = GrownCapacity(cap);
    return cap;
  }
  static size_t BytesFor(size_t rows) {
    return PageBuffer::RoundUpToPages(CapacityFor(rows) * sizeof(Entry));
  }

  void Clear() { Allocate(kMinCapacity); }
  // Makes room for `rows` entries at once. Needed before inserting keys in the order of
  // another index (a checkpoint is written in index order): into a small, growing index,
  // keys that arrive sorted by tag all find their homes in its first buckets, and every
  // insert walks the whole run of them — quadratic.
  void Reserve(size_t rows) {
    const size_t cap = CapacityFor(rows);
    if (cap > capacity_) RehashTo(cap);
  }
  // Empties the index but keeps its buffer, for scratch maps reused request after request.
  void ClearKeepCapacity() {
    for (size_t i = 0; i < capacity_; ++i) entries_[i] = Entry{0, kEmptySlot};
    size_ = 0;
  }

 private:
  struct Entry {
    uint32_t tag;
    uint32_t slot;
  };

  static constexpr size_t kMinCapacity = 16;
  static uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  size_t Home(uint32_t tag) const { return static_cast<size_t>((uint64_t{tag} * capacity_) >> 32); }
  // How far the entry at `pos` with `tag` sits from its home, across the wrap.
  size_t Distance(size_t pos, uint32_t tag) const {
    const size_t home = Home(tag);
    return pos >= home ? pos - home : pos + capacity_ - home;
  }
  static size_t MaxSizeFor(size_t cap) { return cap - cap / 8; }
  static size_t GrownCapacity(size_t cap) { return (cap + cap / 4 + 15) / 16 * 16; }

  void Allocate(size_t cap) {
    // Zero pages are not empty entries (slot 0 is valid), so mark every bucket.
    buffer_ = PageBuffer(cap * sizeof(Entry));
    entries_ = buffer_.as<Entry>();
    for (size_t i = 0; i < cap; ++i) entries_[i] = Entry{0, kEmptySlot};
    capacity_ = cap;
    max_size_ = MaxSizeFor(cap);
    size_ = 0;
  }

  void InsertNoGrow(Entry e) {
    size_t pos = Home(e.tag);
    size_t dist = 0;
    for (;;) {
      Entry& cur = entries_[pos];
      if (cur.slot == kEmptySlot) {
        cur = e;
        return;
      }
      const size_t cur_dist = Distance(pos, cur.tag);
      if (cur_dist < dist) {  // take from the rich: the newcomer is farther from home
        std::swap(cur, e);
        dist = cur_dist;
      }
      pos = Next(pos);
      ++dist;
    }
  }

  void Grow() { RehashTo(GrownCapacity(capacity_)); }
  void RehashTo(size_t cap) {
    PageBuffer old = std::move(buffer_);
    const Entry* old_entries = old.as<Entry>();
    const size_t old_cap = capacity_;
    const size_t old_size = size_;
    Allocate(cap);
    for (size_t i = 0; i < old_cap; ++i) {
      if (old_entries[i].slot != kEmptySlot) InsertNoGrow(old_entries[i]);
    }
    size_ = old_size;
  }

  PageBuffer buffer_;
  Entry* entries_ = nullptr;
  size_t capacity_ = 0;
  size_t max_size_ = 0;
  size_t size_ = 0;
};

}  // namespace mtps::ps
