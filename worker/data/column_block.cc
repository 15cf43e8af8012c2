// AppendRows: copies a range of records from a ColumnView into an owned ColumnBlock.
#include "worker/data/column_block.h"

#include <cassert>

namespace mtps {
namespace {

void AppendStrided(const ColumnView::Strided& s, int64_t begin, int64_t end, std::vector<float>* out) {
  const int n = static_cast<int>(s.column.size());
  if (s.identity) {
    out->insert(out->end(), s.base + begin * n, s.base + end * n);
    return;
  }
  for (int64_t r = begin; r < end; ++r) {
    const float* row = s.base + r * s.stride;
    for (int j = 0; j < n; ++j) out->push_back(row[s.column[j]]);
  }
}

}  // namespace

void AppendRows(const ColumnView& src, int64_t begin, int64_t end, ColumnBlock* dst) {
  assert(static_cast<int>(src.labels.column.size()) == dst->num_tasks);
  assert(static_cast<int>(src.dense.column.size()) == dst->num_dense);
  assert(src.sparse.size() == dst->sparse.size());
  AppendStrided(src.labels, begin, end, &dst->labels);
  AppendStrided(src.dense, begin, end, &dst->dense);
  for (size_t f = 0; f < src.sparse.size(); ++f) {
    const ColumnView::Sparse& s = src.sparse[f];
    ColumnBlock::Sparse& d = dst->sparse[f];
    const uint32_t base = d.offsets.back();
    const uint32_t first = s.offsets[begin];
    for (int64_t r = begin + 1; r <= end; ++r) d.offsets.push_back(base + (s.offsets[r] - first));
    d.keys.insert(d.keys.end(), s.keys + first, s.keys + s.offsets[end]);
  }
  dst->rows += end - begin;
}

}  // namespace mtps
