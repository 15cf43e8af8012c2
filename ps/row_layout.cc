// RowLayout arithmetic: slot shape, the index's growth steps (RowIndex::BytesFor), the
// sketch's size (CountMinSketch::BytesFor) and the capacity search under a byte budget.
#include "ps/row_layout.h"

#include <algorithm>
#include <limits>

#include "ps/count_min_sketch.h"
#include "ps/optimizer.h"
#include "ps/page_memory.h"
#include "ps/precision.h"
#include "ps/row_index.h"

namespace mtps::ps {
namespace {

constexpr uint64_t kMaxRows = std::numeric_limits<uint32_t>::max() - 1;  // slot ids are u32

}  // namespace

RowLayout RowLayoutFor(const TableSpec& spec) {
  RowLayout layout;
  layout.precision = spec.precision;
  layout.dim = spec.dim;
  layout.state_floats = StateFloats(spec.optimizer, spec.dim);
  layout.weight_bytes = PrecisionBytes(spec.precision) * static_cast<size_t>(spec.dim);
  layout.state_offset = RowLayout::kMetaBytes + (layout.weight_bytes + 3) / 4 * 4;
  layout.slot_bytes =
      layout.state_offset + sizeof(float) * static_cast<size_t>(layout.state_floats);
  layout.chunk_bytes = PageBuffer::RoundUpToPages(layout.slot_bytes * RowLayout::kRowsPerChunk);
  return layout;
}

size_t AdmissionSketchWidth(const TableSpec& spec, uint64_t row_capacity) {
  if (spec.admit_min_count <= 1) return 0;
  // Enough counters that the rare keys of a full table rarely collide with each other.
  const uint64_t expected = spec.capacity_rows > 0 ? row_capacity : (uint64_t{1} << 16);
  return static_cast<size_t>(
      std::clamp<uint64_t>(expected, uint64_t{1} << 10, uint64_t{1} << 22));
}

uint64_t AdmissionSketchBytes(const TableSpec& spec, uint64_t row_capacity) {
  const size_t width = AdmissionSketchWidth(spec, row_capacity);
  return width == 0 ? 0 : CountMinSketch::BytesFor(width);
}

TableBytes TableBytesFor(const RowLayout& layout, uint64_t rows, uint64_t sketch_bytes) {
  TableBytes bytes;
  const uint64_t chunks = (rows + RowLayout::kRowsPerChunk - 1) / RowLayout::kRowsPerChunk;
  bytes.slabs = chunks * layout.chunk_bytes;
  bytes.index = RowIndex::BytesFor(rows);
  bytes.sketch = sketch_bytes;
  return bytes;
}

uint64_t ResidentSlabBytes(const RowLayout& layout, uint64_t rows) {
  const uint64_t full = rows / RowLayout::kRowsPerChunk;
  const uint64_t rest = rows % RowLayout::kRowsPerChunk;
  return full * layout.chunk_bytes + PageBuffer::RoundUpToPages(rest * layout.slot_bytes);
}

uint64_t ShardRowLimit(const TableSpec& spec, uint32_t capacity_share) {
  if (spec.capacity_rows == 0) return kMaxRows;
  return std::min<uint64_t>(kMaxRows, (spec.capacity_rows + capacity_share - 1) / capacity_share);
}

uint64_t ShardRowCapacity(const TableSpec& spec, uint32_t capacity_share) {
  uint64_t rows_cap = ShardRowLimit(spec, capacity_share);
  if (spec.capacity_bytes > 0) {
    // The most rows whose slabs, index and sketch fit in this shard's byte budget.
    const RowLayout layout = RowLayoutFor(spec);
    const uint64_t budget = spec.capacity_bytes / capacity_share;
    const uint64_t sketch = AdmissionSketchBytes(spec, rows_cap);
    uint64_t lo = 0, hi = rows_cap;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo + 1) / 2;
      if (TableBytesFor(layout, mid, sketch).total() <= budget) lo = mid; else hi = mid - 1;
    }
    rows_cap = lo;
  }
  return rows_cap;
}

}  // namespace mtps::ps
