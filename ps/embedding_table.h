// EmbeddingTable: one shard's part of a sparse table: 64-bit key -> row of `dim` floats
// with its optimizer state and metadata, plus admission, eviction and expiry.
//
//   auto table = EmbeddingTable::Create(spec);         // spec: TableSpec (job_spec.h)
//   if (!table.ok()) return table.status();
//   (*table)->Pull(keys, n, out, step, /*count_as_sighting=*/true);  // out: n x dim
//   StatusOr<PushResult> r = (*table)->Push(keys, grads, n, step);    // grads: n x dim
//   // r->applied rows updated, r->dropped gradients of keys without a row (not admitted)
//
// Storage: rows live in slabs of kRowsPerChunk slots (no allocation per row), each slot
//   [key u64][last step u32][frequency u16][update count u16]
//   [dim weights in spec.precision][StateFloats(dim) fp32 optimizer state]
// (RowLayout, row_layout.h) under a RowIndex (flat Robin Hood hash, 8 bytes per entry).
// Freed slots are reused.
//
// Precision: fp16/bf16 tables store weights rounded to nearest even (precision.h);
// every interface here still speaks fp32. A pull widens the stored weights (exactly), a
// push applies the optimizer to the widened row and rounds the result back, and a key
// without a row pulls its initial value rounded as its row would store it.
//
// Semantics:
// - A key without a row pulls its deterministic initial value (RowInitializer).
// - Admission: a pull with count_as_sighting counts a sighting of a key without a row in
//   a CountMinSketch; at admit_min_count sightings the key gets a row (initial value,
//   initial optimizer state). With admit_min_count <= 1 a key gets its row on its first
//   sighting pull or its first push. A push to a key without a row is dropped and counted
//   when admit_min_count > 1.
// - Metadata: frequency counts sighting pulls (saturating at 65535; a row made by a push
//   starts at 1); last step is the largest step of any sighting pull or push that touched
//   the row (clamped to 32 bits); update count drives Adam's bias correction and
//   saturates at 65535 (where 1 - beta2^t is 1 for beta2 <= 0.999; for beta2 = 0.9999 it
//   stays 0.14% short of 1 from then on).
// - Capacity: the table holds at most RowCapacity() rows, the tighter of
//   spec.capacity_rows and what fits in spec.capacity_bytes (slabs + index + sketch),
//   each divided by `capacity_share` (the number of shards that split the table). A new
//   row in a full table first evicts a batch of the least valuable rows: each victim is
//   the lowest of 8 sampled rows by frequency / (1 + steps since last seen).
// - Expiry (ttl_steps > 0): a row idle for more than ttl_steps steps behaves as absent
//   when touched, and every Pull/Push also sweeps a few index buckets for idle rows.
// - A push whose gradients hold a NaN or an infinity is rejected as a whole
//   (INVALID_ARGUMENT naming the key's index, the key and the value); nothing changes.
//   Keys repeated within one push are applied one after the other.
// - Changes (for incremental checkpoints): every row made or changed (push, sighting pull,
//   insert) sets its slot's bit in a bitmap beside the slabs (one OR on the hot path, 1 bit
//   per slot; a removed row's bit is cleared), and once ResetChanges() has started tracking,
//   the key of every row removed (eviction, expiry, Erase) is listed. More removals than
//   max(rows, 65536) since the last reset, or a Clear(), stop tracking (the list is freed):
//   then only a whole checkpoint can describe the table, until the next reset.
//
// Thread-safety: single writer. All non-const methods must be called from one thread at
// a time (ShardedTable gives each shard's tables to one thread). Counters() and
// MemoryBytes() may be called from any thread at any time (relaxed atomics). Other const
// methods need the same exclusion as writers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "ps/count_min_sketch.h"
#include "ps/initializer.h"
#include "ps/memory_budget.h"
#include "ps/optimizer.h"
#include "ps/page_memory.h"
#include "ps/push_result.h"
#include "ps/row_index.h"
#include "ps/row_layout.h"

namespace mtps::ps {

// The metadata stored beside each row; checkpoints keep it.
struct RowMeta {
  uint32_t frequency = 0;
  uint32_t last_step = 0;
  uint32_t update_count = 0;
  friend bool operator==(const RowMeta&, const RowMeta&) = default;
};

// A snapshot of a table's counters (cumulative since creation, except rows and bytes).
struct TableCounters {
  uint64_t rows = 0;
  uint64_t bytes = 0;          // MemoryBytes(): slabs + index + sketch
  uint64_t admitted = 0;       // rows created
  uint64_t evicted = 0;        // rows removed to stay under capacity
  uint64_t expired = 0;        // rows removed for idling past ttl_steps
  uint64_t dropped_pushes = 0; // gradients dropped for keys without a row
  uint64_t rejected_requests = 0;  // pushes refused whole (non-finite gradients)
  uint64_t budget_refused = 0;     // new rows not created: the server's memory budget is spent
  TableCounters& operator+=(const TableCounters& o);
};

class EmbeddingTable {
 public:
  static constexpr uint32_t kRowsPerChunk = RowLayout::kRowsPerChunk;

  // Fails (INVALID_ARGUMENT) for a dim <= 0 or a capacity_bytes too small for one row.
  static StatusOr<std::unique_ptr<EmbeddingTable>> Create(const TableSpec& spec,
                                                          uint32_t capacity_share = 1);
  ~EmbeddingTable();
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  // Writes the value of each key into out[i * dim]. See the class comment for admission.
  void Pull(const uint64_t* keys, size_t n, float* out, uint64_t step, bool count_as_sighting);
  // Validates, then applies. On error nothing changed and rejected_requests grew by one.
  StatusOr<PushResult> Push(const uint64_t* keys, const float* grads, size_t n, uint64_t step);

  // The same on the subset keys[pos[j]], j < m, of a request (one shard's part of a
  // fanned-out request): out/grads rows are at pos[j] * dim. PushSubset does not validate;
  // the caller has validated the whole request (ValidateGradients) before fanning out.
  // When `accepted` is given, accepted[j] says whether keys[pos[j]] met a row (1) or was
  // dropped (0).
  void PullSubset(const uint64_t* keys, const uint32_t* pos, size_t m, float* out, uint64_t step,
                  bool count_as_sighting);
  PushResult PushSubset(const uint64_t* keys, const uint32_t* pos, size_t m, const float* grads,
                        uint64_t step, uint8_t* accepted = nullptr);

  // Removes rows idle past ttl_steps at `now_step`, looking at up to `max_buckets` index
  // buckets from where the last sweep stopped. Returns the rows removed.
  size_t ExpireIdle(uint64_t now_step, size_t max_buckets);

  // --- Inspection, checkpoints and tests (no admission, no metadata change) ---
  // Copies the row of `key` (any of the outputs may be null). False when it has no row.
  bool Lookup(uint64_t key, float* weights, float* state, RowMeta* meta) const;
  // Calls fn(key, values, meta) for every row; `values` holds dim + StateFloats floats
  // (the weights widened to fp32).
  void ForEachRow(const std::function<void(uint64_t, const float*, const RowMeta&)>& fn) const;
  // Inserts or overwrites a row with the given values (dim + StateFloats floats; the
  // weights are rounded to the table's precision) and metadata, bypassing admission;
  // evicts if full.
  void InsertRow(uint64_t key, const float* values, const RowMeta& meta);
  // The same with the values as stored: layout().stored_value_bytes() bytes, the weights
  // in the table's precision, then the fp32 state. Checkpoints use these, so a row
  // comes back bit for bit in any precision.
  void ForEachStoredRow(
      const std::function<void(uint64_t, const char*, const RowMeta&)>& fn) const;
  void InsertStoredRow(uint64_t key, const char* stored, const RowMeta& meta);
  bool Erase(uint64_t key);
  void Clear();

  // --- Changes since the last ResetChanges() (incremental checkpoints) ---
  // Whether every change since the last ResetChanges() is known: false before the first
  // and after tracking stopped (see the class comment).
  bool ChangesTracked() const { return tracking_changes_; }
  // Calls fn(key, stored values, meta) for every row made or changed since the last
  // ResetChanges(), values as ForEachStoredRow gives them.
  void ForEachChangedStoredRow(
      const std::function<void(uint64_t, const char*, const RowMeta&)>& fn) const;
  // Keys whose rows were removed since the last ResetChanges() (a key may repeat, and may
  // have a row again: apply removals before rows). Meaningful only while ChangesTracked().
  const std::vector<uint64_t>& RemovedKeys() const { return removed_keys_; }
  // Forgets the changes so far and (re)starts tracking: call right after the table's rows
  // were written to a checkpoint, on the thread that writes the table.
  void ResetChanges();

  const TableSpec& spec() const { return spec_; }
  int dim() const { return dim_; }
  int state_floats() const { return state_floats_; }
  Precision precision() const { return layout_.precision; }
  const RowLayout& layout() const { return layout_; }
  int values_per_row() const { return dim_ + state_floats_; }
  size_t rows() const { return index_.size(); }
  uint64_t RowCapacity() const { return row_capacity_; }
  // Bytes the table holds: slabs + index + sketch (page-exact, see PageBuffer).
  uint64_t MemoryBytes() const { return bytes_.load(std::memory_order_relaxed); }
  // The ideal bytes of one row: its stored weights and optimizer state, nothing else.
  uint64_t IdealRowBytes() const { return layout_.stored_value_bytes(); }
  TableCounters Counters() const;
  // Rows are created only while `budget` (shared with the server's other tables; it must
  // outlive this table) has room; the table adds its size to it from now on.
  void set_memory_budget(MemoryBudget* budget);
  // Sizes the index for `rows` rows (at most RowCapacity()) before a bulk load.
  void ReserveRows(uint64_t rows);
  const RowInitializer& initializer() const { return initializer_; }
  const RowOptimizer& optimizer() const { return optimizer_; }

 private:
  EmbeddingTable(const TableSpec& spec, uint32_t capacity_share);

  // The first RowLayout::kMetaBytes of a slot: key u64, last step u32, frequency u16,
  // update count u16.
  char* SlotAddress(uint32_t slot) const {
    return chunks_[slot / kRowsPerChunk].as<char>() +
           size_t{slot % kRowsPerChunk} * layout_.slot_bytes;
  }
  char* SlotWeights(uint32_t slot) const { return SlotAddress(slot) + RowLayout::kMetaBytes; }
  float* SlotState(uint32_t slot) const {
    return reinterpret_cast<float*>(SlotAddress(slot) + layout_.state_offset);
  }
  bool full_precision() const { return layout_.precision == Precision::kFp32; }
  void MarkChanged(uint32_t slot) { changed_[slot >> 6] |= uint64_t{1} << (slot & 63); }
  // The slot's values as stored, contiguous: in place, or copied into `scratch`
  // (stored_value_bytes) when padding splits weights from state.
  const char* StoredValues(uint32_t slot, char* scratch) const;
  // The key is the slot's first 8 bytes.
  uint64_t SlotKey(uint32_t slot) const {
    uint64_t key;
    std::memcpy(&key, SlotAddress(slot), sizeof(key));
    return key;
  }
  RowMeta SlotMeta(uint32_t slot) const;
  static uint64_t RowKey(const char* row) {
    uint64_t key;
    std::memcpy(&key, row, sizeof(key));
    return key;
  }
  // Every cache line of the row's first `bytes`, for writing: points 64 bytes apart and
  // the last byte meet each line of [row, row + bytes).
  static void PrefetchRow(const char* row, size_t bytes) {
    for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(row + offset, 1);
    __builtin_prefetch(row + bytes - 1, 1);
  }
  size_t FindPos(uint64_t key, uint64_t hash) const {
    return index_.Find(key, hash, [this](uint32_t slot) { return SlotKey(slot); });
  }

  uint32_t AllocateSlot();
  // Makes a row for an absent key with its initial values (evicting first when full);
  // returns its slot.
  uint32_t CreateRow(uint64_t key, uint64_t hash, uint64_t step, uint32_t frequency);
  // Whether the server's memory budget lets a new row be created; counts a refusal.
  bool BudgetAllowsNewRow();
  // Removes the row at index position `pos`; its slot goes to the free list.
  void RemoveAt(size_t pos);
  // The slot of `key` (made, evicting first when full, if absent) with `meta` written;
  // the caller writes the values.
  uint32_t SlotForInsert(uint64_t key, const RowMeta& meta);
  void EvictForNewRow(uint64_t now_step);
  bool IsExpired(uint32_t slot, uint64_t now_step) const;
  bool IsExpiredRow(const char* row, uint64_t now_step) const;
  void SweepSome(uint64_t now_step, size_t requested_rows);
  void PublishSize();

  // Walks keys[position_of(j)], j < m, prefetching index buckets and rows ahead of use,
  // and calls visit(j, p, key, hash, slot, row) with the key's live slot and its address,
  // or kEmptySlot and null (a row idle past ttl_steps is removed and counted first). Only
  // the first `row_bytes` of each slot are prefetched: a pull reads no optimizer state.
  template <typename PositionOf, typename Visit>
  void ForEachKey(const uint64_t* keys, PositionOf position_of, size_t m, uint64_t step,
                  size_t row_bytes, Visit visit);
  template <typename PositionOf>
  void PullRows(const uint64_t* keys, PositionOf position_of, size_t m, float* out,
                uint64_t step, bool count_as_sighting);
  // Picks the row update for the table's optimizer and precision, then walks the rows
  // with it: update(stored weights, state, gradient row, update count).
  template <typename PositionOf>
  PushResult PushRows(const uint64_t* keys, PositionOf position_of, size_t m,
                      const float* grads, uint64_t step, uint8_t* accepted);
  template <typename PositionOf, typename Update>
  PushResult PushRows(const uint64_t* keys, PositionOf position_of, size_t m,
                      const float* grads, uint64_t step, uint8_t* accepted, Update update);

  TableSpec spec_;
  int dim_;
  int state_floats_;
  RowOptimizer optimizer_;
  RowInitializer initializer_;

  RowLayout layout_;
  std::vector<float> scratch_;        // one fp32 row (fp16/bf16 tables), writer thread only
  std::vector<PageBuffer> chunks_;    // kRowsPerChunk slots each
  std::vector<uint64_t> changed_;     // bit per slot: row made or changed since ResetChanges
  std::vector<uint64_t> removed_keys_;  // rows removed since ResetChanges, while tracking
  bool tracking_changes_ = false;
  uint32_t slots_used_ = 0;           // slots ever handed out (high-water mark)
  uint32_t free_head_;                // free list threaded through freed slots
  RowIndex index_;
  std::unique_ptr<CountMinSketch> sketch_;  // only when admit_min_count > 1
  uint64_t row_capacity_ = 0;
  size_t sweep_pos_ = 0;
  uint64_t rng_state_;

  MemoryBudget* budget_ = nullptr;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> rows_{0};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> expired_{0};
  std::atomic<uint64_t> dropped_pushes_{0};
  std::atomic<uint64_t> rejected_requests_{0};
  std::atomic<uint64_t> budget_refused_{0};
};

// Checks that every gradient is finite and within [-limit, limit]. The error names the
// first bad one: its key's index in the request, the key, the element and the value.
Status ValidateGradients(const uint64_t* keys, const float* grads, size_t n, int dim,
                         float limit = std::numeric_limits<float>::max());

}  // namespace mtps::ps
