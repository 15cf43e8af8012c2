// EmbeddingTable: slab-allocated rows under a RowIndex, with admission (CountMinSketch),
// sampled eviction and ttl expiry. Pull and push walk a request in a software pipeline
// (prefetch the index bucket, then the row) so that cache misses overlap.
#include "ps/embedding_table.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "ps/finite_check.h"
#include "ps/key_hash.h"
#include "ps/precision.h"

namespace mtps::ps {
namespace {

constexpr uint32_t kNoSlot = RowIndex::kEmptySlot;
constexpr int kEvictionSamples = 8;
// Pipeline distances (in keys): index bucket prefetched kIndexAhead keys ahead, the row
// kRowAhead keys ahead.
constexpr size_t kIndexAhead = 16;
constexpr size_t kRowAhead = 8;
constexpr size_t kHashRing = 32;  // > kIndexAhead, power of two
// Removed keys listed for an increment before tracking gives up (or the table's rows, when
// more): past it a whole checkpoint is about as small as the increment would be.
constexpr size_t kMaxTrackedRemovalsFloor = size_t{1} << 16;

inline uint32_t ClampStep(uint64_t step) {
  return static_cast<uint32_t>(std::min<uint64_t>(step, std::numeric_limits<uint32_t>::max()));
}

struct Identity {
  size_t operator()(size_t j) const { return j; }
};
struct Subset {
  const uint32_t* pos;
  size_t operator()(size_t j) const { return pos[j]; }
};

// Meta field offsets inside a slot. Frequency and update count are 16-bit and saturate
// (see the header): 16 bytes of metadata instead of 20 keep a dim-16 Adagrad row within
// 1.25x of its ideal size.
constexpr size_t kKeyOffset = 0;
constexpr size_t kLastStepOffset = 8;
constexpr size_t kFrequencyOffset = 12;
constexpr size_t kUpdateCountOffset = 14;
constexpr uint32_t kMaxCount = std::numeric_limits<uint16_t>::max();

inline uint32_t LoadU32(const char* slot, size_t offset) {
  uint32_t v;
  std::memcpy(&v, slot + offset, sizeof(v));
  return v;
}
inline void StoreU32(char* slot, size_t offset, uint32_t v) {
  std::memcpy(slot + offset, &v, sizeof(v));
}
inline uint32_t LoadCount(const char* slot, size_t offset) {
  uint16_t v;
  std::memcpy(&v, slot + offset, sizeof(v));
  return v;
}
inline void StoreCount(char* slot, size_t offset, uint32_t v) {
  const uint16_t c = static_cast<uint16_t>(std::min(v, kMaxCount));
  std::memcpy(slot + offset, &c, sizeof(c));
}

// A row is a few cache lines: a copy of a size known here is inlined as vector moves,
// where a copy of a run-time size is a call into libc for every row.
inline void CopyRow(float* dst, const char* src, size_t dim) {
  switch (dim) {
    case 8: std::memcpy(dst, src, 8 * sizeof(float)); return;
    case 16: std::memcpy(dst, src, 16 * sizeof(float)); return;
    case 32: std::memcpy(dst, src, 32 * sizeof(float)); return;
    case 64: std::memcpy(dst, src, 64 * sizeof(float)); return;
    default: std::memcpy(dst, src, dim * sizeof(float));
  }
}

}  // namespace

TableCounters& TableCounters::operator+=(const TableCounters& o) {
  rows += o.rows;
  bytes += o.bytes;
  admitted += o.admitted;
  evicted += o.evicted;
  expired += o.expired;
  dropped_pushes += o.dropped_pushes;
  rejected_requests += o.rejected_requests;
  budget_refused += o.budget_refused;
  return *this;
}

Status ValidateGradients(const uint64_t* keys, const float* grads, size_t n, int dim,
                         float limit) {
  const size_t total = n * static_cast<size_t>(dim);
  const size_t i = FirstOutOfRange(grads, total, limit);
  if (i == total) return Status::OK();
  const size_t row = i / static_cast<size_t>(dim);
  const bool finite = std::isfinite(grads[i]);
  return InvalidArgument(std::string(finite ? "gradient beyond the limit of +-" +
                                                  std::to_string(limit) +
                                                  " (training.max_gradient_abs): "
                                            : "non-finite gradient ") +
                         std::to_string(grads[i]) + " at key index " +
                         std::to_string(row) + " (key " + std::to_string(keys[row]) +
                         ", element " + std::to_string(i % dim) + ")");
}

StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(const TableSpec& spec,
                                                                uint32_t capacity_share) {
  if (spec.dim <= 0) {
    return InvalidArgument("table '" + spec.name + "': dim must be > 0, got " +
                           std::to_string(spec.dim));
  }
  if (capacity_share == 0) return InvalidArgument("capacity_share must be >= 1");
  std::unique_ptr<EmbeddingTable> table(new EmbeddingTable(spec, capacity_share));
  if (table->row_capacity_ == 0) {
    return InvalidArgument("table '" + spec.name + "': capacity_bytes " +
                           std::to_string(spec.capacity_bytes) + " over " +
                           std::to_string(capacity_share) + " shard(s) holds no row of " +
                           std::to_string(table->layout_.slot_bytes) + " bytes");
  }
  return table;
}

EmbeddingTable::EmbeddingTable(const TableSpec& spec, uint32_t capacity_share)
    : spec_(spec),
      dim_(spec.dim),
      state_floats_(StateFloats(spec.optimizer, spec.dim)),
      optimizer_(spec.optimizer),
      initializer_(spec.initializer, spec.seed),
      layout_(RowLayoutFor(spec)),
      free_head_(kNoSlot),
      index_(16),
      rng_state_(Mix64(spec.seed ^ 0x5eed)) {
  if (!full_precision()) scratch_.resize(static_cast<size_t>(dim_));
  // The sketch is sized from the capacity in rows (before any byte budget), the budget
  // then counts it: the same order as RowLayout's ShardRowCapacity.
  if (const size_t width = AdmissionSketchWidth(spec, ShardRowLimit(spec, capacity_share));
      width > 0) {
    sketch_ = std::make_unique<CountMinSketch>(width);
  }
  row_capacity_ = ShardRowCapacity(spec, capacity_share);
  PublishSize();
}

EmbeddingTable::~EmbeddingTable() {
  if (budget_ != nullptr) budget_->Add(-static_cast<int64_t>(bytes_.load()));
}

void EmbeddingTable::set_memory_budget(MemoryBudget* budget) {
  if (budget_ != nullptr) budget_->Add(-static_cast<int64_t>(bytes_.load()));
  budget_ = budget;
  if (budget_ != nullptr) budget_->Add(static_cast<int64_t>(bytes_.load()));
}

void EmbeddingTable::ReserveRows(uint64_t rows) {
  index_.Reserve(static_cast<size_t>(std::min(rows, row_capacity_)));
  PublishSize();
}

bool EmbeddingTable::BudgetAllowsNewRow() {
  if (budget_ == nullptr || !budget_->Exhausted()) return true;
  budget_refused_.fetch_add(1, std::memory_order_relaxed);
  budget_->CountRefused(1);
  return false;
}

RowMeta EmbeddingTable::SlotMeta(uint32_t slot) const {
  const char* s = SlotAddress(slot);
  return RowMeta{LoadCount(s, kFrequencyOffset), LoadU32(s, kLastStepOffset),
                 LoadCount(s, kUpdateCountOffset)};
}

void EmbeddingTable::PublishSize() {
  const uint64_t sketch = sketch_ ? sketch_->MemoryBytes() : 0;
  const uint64_t bytes = chunks_.size() * layout_.chunk_bytes + index_.MemoryBytes() + sketch;
  const uint64_t before = bytes_.exchange(bytes, std::memory_order_relaxed);
  if (budget_ != nullptr && bytes != before)
    budget_->Add(static_cast<int64_t>(bytes) - static_cast<int64_t>(before));
  rows_.store(index_.size(), std::memory_order_relaxed);
}

uint32_t EmbeddingTable::AllocateSlot() {
  if (free_head_ != kNoSlot) {
    const uint32_t slot = free_head_;
    std::memcpy(&free_head_, SlotAddress(slot), sizeof(free_head_));
    return slot;
  }
  if (slots_used_ % kRowsPerChunk == 0 && slots_used_ / kRowsPerChunk == chunks_.size()) {
    chunks_.emplace_back(layout_.chunk_bytes);
    changed_.resize(chunks_.size() * (kRowsPerChunk / 64));
  }
  return slots_used_++;
}

void EmbeddingTable::RemoveAt(size_t pos) {
  const uint32_t slot = index_.SlotAt(pos);
  changed_[slot >> 6] &= ~(uint64_t{1} << (slot & 63));
  if (tracking_changes_) {
    if (removed_keys_.size() < std::max<size_t>(index_.size(), kMaxTrackedRemovalsFloor)) {
      removed_keys_.push_back(SlotKey(slot));
    } else {  // a whole checkpoint is as cheap as this list now
      tracking_changes_ = false;
      std::vector<uint64_t>().swap(removed_keys_);
    }
  }
  index_.EraseAt(pos);
  std::memcpy(SlotAddress(slot), &free_head_, sizeof(free_head_));
  free_head_ = slot;
}

void EmbeddingTable::EvictForNewRow(uint64_t now_step) {
  // A batch at a time, so that a full table pays the sampling once per many inserts.
  const size_t target = std::max<size_t>(1, row_capacity_ / 256);
  size_t removed = 0;
  while (removed < target && index_.size() > 0) {
    size_t victim = RowIndex::kNotFound;
    float victim_score = std::numeric_limits<float>::infinity();
    for (int s = 0; s < kEvictionSamples; ++s) {
      rng_state_ = Mix64(rng_state_);
      size_t pos = index_.BucketOf(rng_state_);
      while (!index_.Occupied(pos)) pos = index_.Next(pos);
      const RowMeta meta = SlotMeta(index_.SlotAt(pos));
      const uint64_t age = now_step > meta.last_step ? now_step - meta.last_step : 0;
      // Rare and long unseen rows are worth least.
      const float score = static_cast<float>(meta.frequency) / (1.0f + static_cast<float>(age));
      if (score < victim_score) {
        victim_score = score;
        victim = pos;
      }
    }
    RemoveAt(victim);
    ++removed;
  }
  evicted_.fetch_add(removed, std::memory_order_relaxed);
}

bool EmbeddingTable::IsExpired(uint32_t slot, uint64_t now_step) const {
  return IsExpiredRow(SlotAddress(slot), now_step);
}

bool EmbeddingTable::IsExpiredRow(const char* row, uint64_t now_step) const {
  if (spec_.ttl_steps == 0) return false;
  const uint32_t last = LoadU32(row, kLastStepOffset);
  return now_step > last && now_step - last > spec_.ttl_steps;
}

uint32_t EmbeddingTable::CreateRow(uint64_t key, uint64_t hash, uint64_t step,
                                   uint32_t frequency) {
  if (index_.size() >= row_capacity_) EvictForNewRow(step);
  const uint32_t slot = AllocateSlot();
  char* s = SlotAddress(slot);
  std::memcpy(s + kKeyOffset, &key, sizeof(key));
  StoreCount(s, kFrequencyOffset, frequency);
  StoreU32(s, kLastStepOffset, ClampStep(step));
  StoreCount(s, kUpdateCountOffset, 0);
  if (full_precision()) {
    initializer_.Fill(key, reinterpret_cast<float*>(SlotWeights(slot)), dim_);
  } else {
    initializer_.Fill(key, scratch_.data(), dim_);
    StoreWeights(layout_.precision, scratch_.data(), scratch_.size(), SlotWeights(slot));
  }
  optimizer_.InitState(SlotState(slot), dim_);
  index_.Insert(hash, slot);
  MarkChanged(slot);
  admitted_.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

void EmbeddingTable::SweepSome(uint64_t now_step, size_t requested_rows) {
  if (spec_.ttl_steps == 0) return;
  ExpireIdle(now_step, requested_rows / 2 + 8);
}

size_t EmbeddingTable::ExpireIdle(uint64_t now_step, size_t max_buckets) {
  if (spec_.ttl_steps == 0 || index_.size() == 0) return 0;
  const size_t cap = index_.capacity();
  size_t pos = sweep_pos_ % cap;
  size_t removed = 0;
  for (size_t seen = 0; seen < max_buckets && seen < cap; ++seen) {
    if (index_.Occupied(pos) && IsExpired(index_.SlotAt(pos), now_step)) {
      RemoveAt(pos);  // a later entry may shift into `pos`: look at it again
      ++removed;
      continue;
    }
    pos = index_.Next(pos);
  }
  sweep_pos_ = pos;
  if (removed > 0) {
    expired_.fetch_add(removed, std::memory_order_relaxed);
    PublishSize();
  }
  return removed;
}

template <typename PositionOf, typename Visit>
void EmbeddingTable::ForEachKey(const uint64_t* keys, PositionOf position_of, size_t m,
                                uint64_t step, size_t row_bytes, Visit visit) {
  // Three stages per key: hash and prefetch its index window (kIndexAhead keys ahead),
  // find its tag in the index and prefetch the row (kRowAhead ahead), then match the key
  // and visit. What the tag stage found (position, slot, slot address) stays exact while
  // the index's version is unchanged; otherwise (a row was made or removed in between)
  // the key is looked up again.
  struct Ahead {
    uint64_t hash;
    uint64_t version;
    size_t tag_pos;
    char* row;
    uint32_t slot;
  };
  Ahead ring[kHashRing];
  auto hash_stage = [&](size_t j) {
    const uint64_t h = IndexHash(keys[position_of(j)]);
    ring[j % kHashRing].hash = h;
    index_.Prefetch(h);
  };
  auto tag_stage = [&](size_t j) {
    Ahead& a = ring[j % kHashRing];
    a.tag_pos = index_.FindTag(a.hash);
    a.version = index_.version();
    if (a.tag_pos != RowIndex::kNotFound) {
      a.slot = index_.SlotAt(a.tag_pos);
      a.row = SlotAddress(a.slot);
      PrefetchRow(a.row, row_bytes);
    }
  };
  const size_t warm_index = std::min(m, kIndexAhead);
  for (size_t j = 0; j < warm_index; ++j) hash_stage(j);
  const size_t warm_rows = std::min(m, kRowAhead);
  for (size_t j = 0; j < warm_rows; ++j) tag_stage(j);
  const bool ttl = spec_.ttl_steps != 0;
  auto key_of = [this](uint32_t slot) { return SlotKey(slot); };
  for (size_t j = 0; j < m; ++j) {
    if (j + kIndexAhead < m) hash_stage(j + kIndexAhead);
    if (j + kRowAhead < m) tag_stage(j + kRowAhead);
    const size_t p = position_of(j);
    const uint64_t key = keys[p];
    const Ahead& a = ring[j % kHashRing];
    size_t pos;
    uint32_t slot = kNoSlot;
    char* row = nullptr;
    if (a.version != index_.version()) [[unlikely]] {
      pos = FindPos(key, a.hash);
    } else if (a.tag_pos == RowIndex::kNotFound) {
      pos = RowIndex::kNotFound;
    } else if (RowKey(a.row) == key) [[likely]] {
      pos = a.tag_pos;
      slot = a.slot;
      row = a.row;
    } else {
      pos = index_.MatchFrom(a.tag_pos, key, key_of);
    }
    if (pos != RowIndex::kNotFound && row == nullptr) {
      slot = index_.SlotAt(pos);
      row = SlotAddress(slot);
    }
    if (ttl && pos != RowIndex::kNotFound && IsExpiredRow(row, step)) {
      RemoveAt(pos);
      expired_.fetch_add(1, std::memory_order_relaxed);
      pos = RowIndex::kNotFound;
      slot = kNoSlot;
      row = nullptr;
    }
    visit(j, p, key, a.hash, slot, row);
  }
}

template <typename PositionOf>
void EmbeddingTable::PullRows(const uint64_t* keys, PositionOf position_of, size_t m,
                              float* out, uint64_t step, bool count_as_sighting) {
  const uint32_t step32 = ClampStep(step);
  const size_t dim = static_cast<size_t>(dim_);
  ForEachKey(keys, position_of, m, step, RowLayout::kMetaBytes + layout_.weight_bytes,
             [&](size_t, size_t p, uint64_t key, uint64_t hash, uint32_t slot, char* s) {
    float* dst = out + p * dim;
    if (slot != kNoSlot) {
      if (count_as_sighting) {
        StoreCount(s, kFrequencyOffset, LoadCount(s, kFrequencyOffset) + 1);
        StoreU32(s, kLastStepOffset, std::max(LoadU32(s, kLastStepOffset), step32));
        MarkChanged(slot);
      }
    } else if (count_as_sighting) {
      if ((!sketch_ || sketch_->Increment(key) >= spec_.admit_min_count) &&
          BudgetAllowsNewRow()) {
        slot = CreateRow(key, hash, step, 1);
        s = SlotAddress(slot);
      }
    }
    if (slot != kNoSlot) {
      if (full_precision()) {
        CopyRow(dst, s + RowLayout::kMetaBytes, dim);
      } else {
        LoadWeights(layout_.precision, s + RowLayout::kMetaBytes, dim, dst);
      }
    } else {
      initializer_.Fill(key, dst, dim_);
      if (!full_precision()) RoundToPrecision(layout_.precision, dst, dim);
    }
  });
  SweepSome(step, m);
  PublishSize();
}

template <typename PositionOf, typename Update>
PushResult EmbeddingTable::PushRows(const uint64_t* keys, PositionOf position_of, size_t m,
                                    const float* grads, uint64_t step, uint8_t* accepted,
                                    Update update) {
  PushResult result;
  const uint32_t step32 = ClampStep(step);
  const size_t dim = static_cast<size_t>(dim_);
  const bool admit_on_push = spec_.admit_min_count <= 1;
  const size_t state_offset = layout_.state_offset;
  ForEachKey(keys, position_of, m, step, layout_.slot_bytes,
             [&](size_t j, size_t p, uint64_t key, uint64_t hash, uint32_t slot, char* s) {
    if (slot == kNoSlot) [[unlikely]] {
      if (admit_on_push && BudgetAllowsNewRow()) {
        slot = CreateRow(key, hash, step, 1);
        s = SlotAddress(slot);
      } else {
        ++result.dropped;
        if (accepted) accepted[j] = 0;
        return;
      }
    }
    if (accepted) accepted[j] = 1;
    MarkChanged(slot);
    const uint32_t updates = std::min(LoadCount(s, kUpdateCountOffset) + 1, kMaxCount);
    StoreCount(s, kUpdateCountOffset, updates);
    StoreU32(s, kLastStepOffset, std::max(LoadU32(s, kLastStepOffset), step32));
    update(s + RowLayout::kMetaBytes, reinterpret_cast<float*>(s + state_offset),
           grads + p * dim, updates);
    ++result.applied;
  });
  if (result.dropped > 0) dropped_pushes_.fetch_add(result.dropped, std::memory_order_relaxed);
  SweepSome(step, m);
  PublishSize();
  return result;
}

template <typename PositionOf>
PushResult EmbeddingTable::PushRows(const uint64_t* keys, PositionOf position_of, size_t m,
                                    const float* grads, uint64_t step, uint8_t* accepted) {
  // The common case gets its kernel called directly, without the optimizer's switch per row.
  const OptimizerSpec& o = optimizer_.spec();
  if (full_precision() && o.type == OptimizerSpec::Type::kAdagrad) {
    const float lr = o.lr, l2 = o.l2, eps = o.epsilon;
    if (dim_ == 16) {
      return PushRows(keys, position_of, m, grads, step, accepted,
                      [&](char* w, float* state, const float* g, uint32_t) {
        row_kernels::AdagradRow16(reinterpret_cast<float*>(w), state, g, lr, l2, eps);
      });
    }
    const int dim = dim_;
    return PushRows(keys, position_of, m, grads, step, accepted,
                    [&](char* w, float* state, const float* g, uint32_t) {
      row_kernels::AdagradRow(reinterpret_cast<float*>(w), state, g, dim, lr, l2, eps);
    });
  }
  if (full_precision()) {
    return PushRows(keys, position_of, m, grads, step, accepted,
                    [&](char* w, float* state, const float* g, uint32_t updates) {
      optimizer_.Apply(reinterpret_cast<float*>(w), state, g, dim_, updates);
    });
  }
  return PushRows(keys, position_of, m, grads, step, accepted,
                  [&](char* w, float* state, const float* g, uint32_t updates) {
    LoadWeights(layout_.precision, w, static_cast<size_t>(dim_), scratch_.data());
    optimizer_.Apply(scratch_.data(), state, g, dim_, updates);
    StoreWeights(layout_.precision, scratch_.data(), static_cast<size_t>(dim_), w);
  });
}

void EmbeddingTable::Pull(const uint64_t* keys, size_t n, float* out, uint64_t step,
                          bool count_as_sighting) {
  PullRows(keys, Identity{}, n, out, step, count_as_sighting);
}

StatusOr<PushResult> EmbeddingTable::Push(const uint64_t* keys, const float* grads, size_t n,
                                          uint64_t step) {
  Status valid = ValidateGradients(keys, grads, n, dim_);
  if (!valid.ok()) {
    rejected_requests_.fetch_add(1, std::memory_order_relaxed);
    return valid.WithContext("table '" + spec_.name + "'");
  }
  return PushRows(keys, Identity{}, n, grads, step, nullptr);
}

void EmbeddingTable::PullSubset(const uint64_t* keys, const uint32_t* pos, size_t m, float* out,
                                uint64_t step, bool count_as_sighting) {
  PullRows(keys, Subset{pos}, m, out, step, count_as_sighting);
}

PushResult EmbeddingTable::PushSubset(const uint64_t* keys, const uint32_t* pos, size_t m,
                                      const float* grads, uint64_t step, uint8_t* accepted) {
  return PushRows(keys, Subset{pos}, m, grads, step, accepted);
}

bool EmbeddingTable::Lookup(uint64_t key, float* weights, float* state, RowMeta* meta) const {
  const size_t pos = FindPos(key, IndexHash(key));
  if (pos == RowIndex::kNotFound) return false;
  const uint32_t slot = index_.SlotAt(pos);
  if (weights) LoadWeights(layout_.precision, SlotWeights(slot), dim_, weights);
  if (state) std::memcpy(state, SlotState(slot), sizeof(float) * state_floats_);
  if (meta) *meta = SlotMeta(slot);
  return true;
}

void EmbeddingTable::ForEachRow(
    const std::function<void(uint64_t, const float*, const RowMeta&)>& fn) const {
  std::vector<float> values(full_precision() ? 0 : values_per_row());
  const size_t cap = index_.capacity();
  for (size_t pos = 0; pos < cap; ++pos) {
    if (!index_.Occupied(pos)) continue;
    const uint32_t slot = index_.SlotAt(pos);
    if (full_precision()) {
      fn(SlotKey(slot), reinterpret_cast<const float*>(SlotWeights(slot)), SlotMeta(slot));
    } else {
      LoadWeights(layout_.precision, SlotWeights(slot), dim_, values.data());
      std::memcpy(values.data() + dim_, SlotState(slot), sizeof(float) * state_floats_);
      fn(SlotKey(slot), values.data(), SlotMeta(slot));
    }
  }
}

const char* EmbeddingTable::StoredValues(uint32_t slot, char* scratch) const {
  // Weights and state are contiguous except for the padding of an odd half-precision dim.
  if (layout_.padding_bytes() == 0) return SlotWeights(slot);
  std::memcpy(scratch, SlotWeights(slot), layout_.weight_bytes);
  std::memcpy(scratch + layout_.weight_bytes, SlotState(slot), sizeof(float) * state_floats_);
  return scratch;
}

void EmbeddingTable::ForEachStoredRow(
    const std::function<void(uint64_t, const char*, const RowMeta&)>& fn) const {
  std::vector<char> scratch(layout_.stored_value_bytes());
  const size_t cap = index_.capacity();
  for (size_t pos = 0; pos < cap; ++pos) {
    if (!index_.Occupied(pos)) continue;
    const uint32_t slot = index_.SlotAt(pos);
    fn(SlotKey(slot), StoredValues(slot, scratch.data()), SlotMeta(slot));
  }
}

void EmbeddingTable::ForEachChangedStoredRow(
    const std::function<void(uint64_t, const char*, const RowMeta&)>& fn) const {
  std::vector<char> scratch(layout_.stored_value_bytes());
  for (size_t w = 0; w < changed_.size(); ++w) {
    for (uint64_t bits = changed_[w]; bits != 0; bits &= bits - 1) {
      // Only live slots have their bit: RemoveAt clears it.
      const uint32_t slot = static_cast<uint32_t>(w * 64 + std::countr_zero(bits));
      fn(SlotKey(slot), StoredValues(slot, scratch.data()), SlotMeta(slot));
    }
  }
}

void EmbeddingTable::ResetChanges() {
  std::fill(changed_.begin(), changed_.end(), 0);
  removed_keys_.clear();
  tracking_changes_ = true;
}

uint32_t EmbeddingTable::SlotForInsert(uint64_t key, const RowMeta& meta) {
  const uint64_t hash = IndexHash(key);
  const size_t pos = FindPos(key, hash);
  uint32_t slot;
  if (pos != RowIndex::kNotFound) {
    slot = index_.SlotAt(pos);
  } else {
    if (index_.size() >= row_capacity_) EvictForNewRow(meta.last_step);
    slot = AllocateSlot();
    std::memcpy(SlotAddress(slot) + kKeyOffset, &key, sizeof(key));
    index_.Insert(hash, slot);
  }
  char* s = SlotAddress(slot);
  StoreCount(s, kFrequencyOffset, meta.frequency);
  StoreU32(s, kLastStepOffset, meta.last_step);
  StoreCount(s, kUpdateCountOffset, meta.update_count);
  MarkChanged(slot);
  return slot;
}

void EmbeddingTable::InsertRow(uint64_t key, const float* values, const RowMeta& meta) {
  const uint32_t slot = SlotForInsert(key, meta);
  StoreWeights(layout_.precision, values, dim_, SlotWeights(slot));
  std::memcpy(SlotState(slot), values + dim_, sizeof(float) * state_floats_);
  PublishSize();
}

void EmbeddingTable::InsertStoredRow(uint64_t key, const char* stored, const RowMeta& meta) {
  const uint32_t slot = SlotForInsert(key, meta);
  std::memcpy(SlotWeights(slot), stored, layout_.weight_bytes);
  std::memcpy(SlotState(slot), stored + layout_.weight_bytes, sizeof(float) * state_floats_);
  PublishSize();
}

bool EmbeddingTable::Erase(uint64_t key) {
  const size_t pos = FindPos(key, IndexHash(key));
  if (pos == RowIndex::kNotFound) return false;
  RemoveAt(pos);
  PublishSize();
  return true;
}

void EmbeddingTable::Clear() {
  index_.Clear();
  chunks_.clear();
  changed_.clear();
  tracking_changes_ = false;
  std::vector<uint64_t>().swap(removed_keys_);
  slots_used_ = 0;
  free_head_ = kNoSlot;
  sweep_pos_ = 0;
  PublishSize();
}

TableCounters EmbeddingTable::Counters() const {
  TableCounters c;
  c.rows = rows_.load(std::memory_order_relaxed);
  c.bytes = bytes_.load(std::memory_order_relaxed);
  c.admitted = admitted_.load(std::memory_order_relaxed);
  c.evicted = evicted_.load(std::memory_order_relaxed);
  c.expired = expired_.load(std::memory_order_relaxed);
  c.dropped_pushes = dropped_pushes_.load(std::memory_order_relaxed);
  c.rejected_requests = rejected_requests_.load(std::memory_order_relaxed);
  c.budget_refused = budget_refused_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace mtps::ps
