// RowLayout: where one row of a sparse table sits in its slab slot, and the bytes a
// table holds for a given number of rows. EmbeddingTable and the memory planner
// (mtps-plan) both read these, so the plan cannot drift from what the servers allocate.
//
//   RowLayout layout = RowLayoutFor(spec);           // spec: TableSpec
//   layout.slot_bytes;                               // one row's slot in a slab
//   TableBytes at_cap = TableBytesFor(spec, rows);   // slabs + index + sketch
//
// A slot is [key u64][last step u32][frequency u16][update count u16]
//           [dim weights in spec.precision][pad to 4 bytes][state floats (fp32)].
// For fp32 tables that is exactly dim + state floats after the metadata.
//
// Optimizer state stays fp32 whatever the precision: Adagrad's accumulator and Adam's
// second moment sum squared gradients (1e-8 and smaller), which fp16 flushes to zero,
// and once they are large, bf16's 8-bit mantissa stops adding small squares at all
// (acc + g^2 == acc), so the learning rate would freeze. Weights tolerate rounding
// (AUC in the capacity sweep); accumulators do not.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/job_spec.h"

namespace mtps::ps {

struct RowLayout {
  static constexpr size_t kMetaBytes = 16;
  static constexpr uint32_t kRowsPerChunk = 1024;  // slots per slab chunk (one mmap)

  Precision precision = Precision::kFp32;
  int dim = 0;
  int state_floats = 0;
  size_t weight_bytes = 0;  // dim stored weights
  size_t state_offset = 0;  // from the start of the slot; a multiple of 4
  size_t slot_bytes = 0;    // stride of slots in a chunk
  size_t chunk_bytes = 0;   // kRowsPerChunk slots, rounded up to whole pages

  // The bytes of a row's values as stored (weights, then state): what checkpoints keep.
  size_t stored_value_bytes() const { return weight_bytes + sizeof(float) * state_floats; }
  size_t padding_bytes() const { return state_offset - kMetaBytes - weight_bytes; }
};

RowLayout RowLayoutFor(const TableSpec& spec);

// Width of the admission sketch of a table whose shard holds at most `row_capacity`
// rows; 0 when the table admits every key at once (no sketch).
size_t AdmissionSketchWidth(const TableSpec& spec, uint64_t row_capacity);
uint64_t AdmissionSketchBytes(const TableSpec& spec, uint64_t row_capacity);

// The bytes one table (one shard's part of it) holds with `rows` rows.
struct TableBytes {
  uint64_t slabs = 0;  // whole chunks, as mapped
  uint64_t index = 0;
  uint64_t sketch = 0;
  uint64_t total() const { return slabs + index + sketch; }
};
// As EmbeddingTable::MemoryBytes() reports it once `rows` rows were inserted (every
// chunk counted whole; the index grown step by step from its initial size).
TableBytes TableBytesFor(const RowLayout& layout, uint64_t rows, uint64_t sketch_bytes);
// The slab bytes the kernel really backs: the last chunk only up to the pages its rows
// touched (chunks are anonymous mappings, filled slot by slot).
uint64_t ResidentSlabBytes(const RowLayout& layout, uint64_t rows);

// The most rows one of `capacity_share` shards may hold by spec.capacity_rows alone
// (a huge number when unbounded); the admission sketch is sized from it.
uint64_t ShardRowLimit(const TableSpec& spec, uint32_t capacity_share);
// The most rows one of `capacity_share` shards of the table may hold: the tighter of
// spec.capacity_rows and spec.capacity_bytes, each split evenly. 0 means not even one
// row fits the byte budget.
uint64_t ShardRowCapacity(const TableSpec& spec, uint32_t capacity_share);

}  // namespace mtps::ps
