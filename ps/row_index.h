// RowIndex: the flat open-addressing hash index of a table, key -> row slot number.
// Linear probing kept sorted by tag (Robin Hood order), backward-shift deletion, no wrap.
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
// tag alone (fastrange: tag * home_buckets >> 32), so growing and shifting never need
// the keys, and the capacity need not be a power of two: growing by 1.25x keeps the load
// between 0.7 and 7/8, i.e. 9 to 11.5 bytes per row.
//
// Because the home is monotone in the tag, Robin Hood order is simply "entries sorted by
// tag": a run never wraps around (an overflow area of up to 1024 entries follows the
// home buckets, and an insert that would run past it grows the index), so a lookup is
// a scan of 4-byte tag compares from the home bucket — `while (tag[pos] < tag) ++pos` —
// that stops at the first tag not below its own; an empty entry has the largest tag and
// ends every scan, and the last entry always stays empty as the scan's sentinel. Growing
// is one linear pass, since the old entries come out already sorted.
//
// For pipelined lookups, FindTag(hash) finds the first entry with the key's tag without
// touching any row, and version() changes on every insert, erase and rehash, so a
// position found ahead of time is still exact while the version is unchanged.
// Thread-safety: none; the owner serialises all calls (const calls may run concurrently
// with each other but not with a mutation).
#pragma once

#include <emmintrin.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "ps/page_memory.h"

namespace mtps::ps {

class RowIndex {
 public:
  static constexpr size_t kNotFound = std::numeric_limits<size_t>::max();
  static constexpr uint32_t kEmptySlot = std::numeric_limits<uint32_t>::max();

  explicit RowIndex(size_t initial_capacity = 1024) {
    Allocate(HomeBucketsFor(initial_capacity < kMinCapacity ? kMinCapacity : initial_capacity));
  }

  // Position of `key` (whose IndexHash is `hash`), or kNotFound. `key_of(slot)` returns
  // the key stored in a slot.
  template <typename KeyOf>
  size_t Find(uint64_t key, uint64_t hash, const KeyOf& key_of) const {
    const size_t pos = FindTag(hash);
    return pos == kNotFound ? kNotFound : MatchFrom(pos, key, key_of);
  }

  // The position of the first entry holding `hash`'s tag, or kNotFound; touches no row.
  size_t FindTag(uint64_t hash) const {
    const uint32_t tag = TagOf(hash);
    size_t pos = Home(tag);
    // The entries below `tag` are a prefix of the run from home (the table is sorted),
    // so counting them in a window of kWindow (two SSE2 compares) finds the spot without
    // a data-dependent branch (runs rarely pass a window). The overflow area keeps the
    // window in bounds.
    const __m128i bias = _mm_set1_epi32(std::numeric_limits<int32_t>::min());
    const __m128i biased_tag = _mm_xor_si128(_mm_set1_epi32(static_cast<int32_t>(tag)), bias);
    for (;;) {
      const size_t below = CountBelow(&entries_[pos], biased_tag, bias);
      pos += below;
      if (below < kWindow) break;
    }
    return entries_[pos].tag == tag ? pos : kNotFound;
  }
  // With `tag_pos` from FindTag (and no mutation since): the position of `key` among
  // the entries sharing that tag, or kNotFound.
  template <typename KeyOf>
  size_t MatchFrom(size_t tag_pos, uint64_t key, const KeyOf& key_of) const {
    const uint32_t tag = entries_[tag_pos].tag;
    for (size_t pos = tag_pos; entries_[pos].tag == tag; ++pos) {
      if (key_of(entries_[pos].slot) == key) return pos;
    }
    return kNotFound;
  }
  // Changes whenever an entry is added, removed or moved.
  uint64_t version() const { return version_; }

  // Pulls in the cache lines FindTag's first window reads (home bucket and the 7 after:
  // 64 bytes, two lines unless home starts one) ahead of a Find.
  void Prefetch(uint64_t hash) const {
    const Entry* home = &entries_[Home(TagOf(hash))];
    __builtin_prefetch(home);
    __builtin_prefetch(home + kWindow - 1);
  }

  // Adds an entry for a key known to be absent. Grows (rehashes) past 7/8 load, or when
  // the run would pass the end of the overflow area.
  void Insert(uint64_t hash, uint32_t slot) {
    if (size_ + 1 > max_size_) Grow();
    while (!TryInsert(Entry{TagOf(hash), slot})) Grow();
    ++size_;
    ++version_;
  }

  // Removes the entry at `pos` (from Find or a scan) by shifting the rest of its run
  // (the entries after it that sit past their home) back by one.
  void EraseAt(size_t pos) {
    size_t end = pos + 1;
    while (entries_[end].tag != kEmptyTag && Home(entries_[end].tag) < end) ++end;
    std::memmove(&entries_[pos], &entries_[pos + 1], (end - pos - 1) * sizeof(Entry));
    entries_[end - 1] = kEmptyEntry;
    --size_;
    ++version_;
  }

  // Bucket access for scans (eviction sampling, expiry sweeps, iteration): positions
  // run over [0, capacity()), home buckets and overflow area together.
  size_t capacity() const { return buckets_; }
  // Maps 64 random bits to a bucket, for sampling.
  size_t BucketOf(uint64_t random) const { return ((random >> 32) * buckets_) >> 32; }
  size_t Next(size_t pos) const { return pos + 1 == buckets_ ? 0 : pos + 1; }
  bool Occupied(size_t pos) const { return entries_[pos].tag != kEmptyTag; }
  uint32_t SlotAt(size_t pos) const { return entries_[pos].slot; }
  void SetSlotAt(size_t pos, uint32_t slot) { entries_[pos].slot = slot; }

  size_t size() const { return size_; }
  // The farthest any entry sits from its home bucket: what the slowest lookup walks.
  size_t LongestProbe() const {
    size_t longest = 0;
    for (size_t pos = 0; pos < buckets_; ++pos)
      if (Occupied(pos)) longest = std::max(longest, pos - Home(entries_[pos].tag));
    return longest;
  }
  size_t MemoryBytes() const { return buffer_.bytes(); }
  // The buckets (capacity()) the index has once it holds `rows` entries, grown step by
  // step from its smallest size.
  static size_t CapacityFor(size_t rows) { return BucketsFor(HomeBucketsFor(rows)); }
  static size_t BytesFor(size_t rows) {
    return PageBuffer::RoundUpToPages(CapacityFor(rows) * sizeof(Entry));
  }

  void Clear() { Allocate(kMinCapacity); }
  // Makes room for `rows` entries at once. Needed before inserting keys in the order of
  // another index (a checkpoint is written in index order): into a small, growing index,
  // keys that arrive sorted by tag all find their homes in its first buckets, and every
  // insert walks the whole run of them — quadratic.
  void Reserve(size_t rows) {
    const size_t home = HomeBucketsFor(rows);
    if (home > home_buckets_) RehashTo(home);
  }
  // Empties the index but keeps its buffer, for scratch maps reused request after request.
  void ClearKeepCapacity() {
    std::memset(static_cast<void*>(entries_), 0xff, buckets_ * sizeof(Entry));
    size_ = 0;
    ++version_;
  }

 private:
  struct Entry {
    uint32_t tag;
    uint32_t slot;
  };
  // The empty entry's tag is above every real tag (TagOf never returns it), so scans for
  // "the first tag not below mine" stop at an empty entry.
  static constexpr uint32_t kEmptyTag = std::numeric_limits<uint32_t>::max();
  static constexpr Entry kEmptyEntry{kEmptyTag, kEmptySlot};

  static constexpr size_t kMinCapacity = 16;
  static constexpr size_t kMaxOverflow = 1024;
  static constexpr size_t kWindow = 8;  // <= the smallest overflow area
  // How many of the kWindow entries from `e` have a tag below the one `biased_tag` holds
  // (tags XOR `bias`, so that SSE2's signed compare orders them as unsigned). They are a
  // prefix of the window, so the count is the trailing ones of the compare mask.
  static size_t CountBelow(const Entry* e, __m128i biased_tag, __m128i bias) {
    static_assert(kWindow == 8 && sizeof(Entry) == 8);
    const float* f = reinterpret_cast<const float*>(e);
    const __m128i tags_lo = _mm_castps_si128(
        _mm_shuffle_ps(_mm_loadu_ps(f), _mm_loadu_ps(f + 4), _MM_SHUFFLE(2, 0, 2, 0)));
    const __m128i tags_hi = _mm_castps_si128(
        _mm_shuffle_ps(_mm_loadu_ps(f + 8), _mm_loadu_ps(f + 12), _MM_SHUFFLE(2, 0, 2, 0)));
    const int lo = _mm_movemask_ps(
        _mm_castsi128_ps(_mm_cmpgt_epi32(biased_tag, _mm_xor_si128(tags_lo, bias))));
    const int hi = _mm_movemask_ps(
        _mm_castsi128_ps(_mm_cmpgt_epi32(biased_tag, _mm_xor_si128(tags_hi, bias))));
    return static_cast<size_t>(std::countr_one(static_cast<unsigned>(lo | (hi << 4))));
  }
  static uint32_t TagOf(uint64_t hash) {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    return tag == kEmptyTag ? kEmptyTag - 1 : tag;
  }
  size_t Home(uint32_t tag) const {
    return static_cast<size_t>((uint64_t{tag} * home_buckets_) >> 32);
  }
  static size_t MaxSizeFor(size_t home) { return home - home / 8; }
  static size_t GrownCapacity(size_t home) { return (home + home / 4 + 15) / 16 * 16; }
  static size_t HomeBucketsFor(size_t rows) {
    size_t home = kMinCapacity;
    while (MaxSizeFor(home) < rows) home = GrownCapacity(home);
    return home;
  }
  // Home buckets, then the overflow area (runs of the last homes spill into it), then
  // the sentinel.
  static size_t BucketsFor(size_t home) { return home + std::min(home, kMaxOverflow) + 1; }

  void Allocate(size_t home) {
    // Zero pages are not empty entries (slot 0 and tag 0 are valid), so mark every bucket.
    buckets_ = BucketsFor(home);
    buffer_ = PageBuffer(buckets_ * sizeof(Entry));
    entries_ = buffer_.as<Entry>();
    std::memset(static_cast<void*>(entries_), 0xff, buckets_ * sizeof(Entry));
    home_buckets_ = home;
    max_size_ = MaxSizeFor(home);
    size_ = 0;
    ++version_;
  }

  // Places `e` after every entry with a tag not above its own (from its home on), shifting
  // the rest of the run up by one. False, with nothing changed, when the run would reach
  // the sentinel.
  bool TryInsert(Entry e) {
    size_t pos = Home(e.tag);
    while (entries_[pos].tag <= e.tag) ++pos;
    size_t empty = pos;
    while (entries_[empty].tag != kEmptyTag) ++empty;
    if (empty + 1 >= buckets_) return false;
    std::memmove(&entries_[pos + 1], &entries_[pos], (empty - pos) * sizeof(Entry));
    entries_[pos] = e;
    return true;
  }

  void Grow() { RehashTo(GrownCapacity(home_buckets_)); }
  // Old entries come out sorted by tag, so each goes to max(its home, the last + 1).
  void RehashTo(size_t home) {
    PageBuffer old = std::move(buffer_);
    const Entry* old_entries = old.as<Entry>();
    const size_t old_buckets = buckets_;
    const size_t old_size = size_;
    for (;; home = GrownCapacity(home)) {
      Allocate(home);
      size_t next = 0;
      bool fits = true;
      for (size_t i = 0; i < old_buckets && fits; ++i) {
        if (old_entries[i].tag == kEmptyTag) continue;
        const size_t pos = std::max(Home(old_entries[i].tag), next);
        fits = pos + 1 < buckets_;
        if (fits) entries_[pos] = old_entries[i];
        next = pos + 1;
      }
      if (fits) break;
    }
    size_ = old_size;
  }

  PageBuffer buffer_;
  Entry* entries_ = nullptr;
  size_t home_buckets_ = 0;
  size_t buckets_ = 0;  // home buckets + overflow + sentinel
  size_t max_size_ = 0;
  size_t size_ = 0;
  uint64_t version_ = 0;
};

}  // namespace mtps::ps
