// BatchAssembler: record copies into a Batch (range and gather forms) and the per-table
// dedup that yields unique keys and the inverse index.
#include "worker/data/batch_assembler.h"

namespace mtps {
namespace {

void AppendStrided(const ColumnView::Strided& s, int64_t begin, int64_t end, std::vector<float>* out) {
  const int n = static_cast<int>(s.column.size());
  if (n == 0) return;
  if (s.identity) {
    out->insert(out->end(), s.base + begin * n, s.base + end * n);
    return;
  }
  for (int64_t r = begin; r < end; ++r) {
    const float* row = s.base + r * s.stride;
    for (int j = 0; j < n; ++j) out->push_back(row[s.column[j]]);
  }
}

void GatherStrided(const ColumnView::Strided& s, const uint32_t* rows, int64_t count, std::vector<float>* out) {
  const int n = static_cast<int>(s.column.size());
  if (n == 0) return;
  const size_t at = out->size();
  out->resize(at + count * n);
  float* dst = out->data() + at;
  for (int64_t i = 0; i < count; ++i) {
    const float* row = s.base + static_cast<int64_t>(rows[i]) * s.stride;
    if (s.identity) {
      for (int j = 0; j < n; ++j) dst[j] = row[j];
    } else {
      for (int j = 0; j < n; ++j) dst[j] = row[s.column[j]];
    }
    dst += n;
  }
}

}  // namespace

BatchAssembler::BatchAssembler(const FeatureMap& map) : map_(map), table_fields_(map.num_tables()) {
  for (int f = 0; f < map.num_sparse(); ++f) table_fields_[map.sparse(f).table_index].push_back(f);
}

// A sequence field keeps the last max_length values of a record (the most recent ones),
// whatever the file holds: CSV readers cut already, .mtb files may hold longer lists.
void BatchAssembler::AppendSequence(const ColumnView::Sparse& s, const uint32_t* rows, int64_t begin, int64_t n,
                                    uint32_t max_length, Batch::Field* out) const {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t r = rows != nullptr ? rows[i] : static_cast<uint32_t>(begin + i);
    const uint32_t a = s.offsets[r], b = s.offsets[r + 1];
    const uint32_t first = b - a > max_length ? b - max_length : a;
    out->keys.insert(out->keys.end(), s.keys + first, s.keys + b);
    out->offsets.push_back(static_cast<int32_t>(out->keys.size()));
  }
}

void BatchAssembler::Begin(Batch* batch) const {
  batch->fields.resize(map_.num_sparse());
  batch->tables.resize(map_.num_tables());
  batch->Clear();
  batch->num_tasks = map_.num_tasks();
  batch->num_dense = map_.num_dense();
  for (Batch::Field& f : batch->fields) f.offsets.push_back(0);
}

void BatchAssembler::AppendRange(const ColumnView& view, int64_t begin, int64_t end, Batch* batch) const {
  AppendStrided(view.labels, begin, end, &batch->labels);
  AppendStrided(view.dense, begin, end, &batch->dense);
  for (size_t f = 0; f < view.sparse.size(); ++f) {
    const ColumnView::Sparse& s = view.sparse[f];
    Batch::Field& out = batch->fields[f];
    if (const int max_length = map_.sparse(static_cast<int>(f)).max_length; max_length > 0) {
      AppendSequence(s, nullptr, begin, end - begin, static_cast<uint32_t>(max_length), &out);
      continue;
    }
    const int32_t base = out.offsets.back();
    const uint32_t first = s.offsets[begin];
    const size_t at = out.offsets.size();
    out.offsets.resize(at + static_cast<size_t>(end - begin));
    int32_t* dst = out.offsets.data() + at;
    for (int64_t r = begin + 1; r <= end; ++r) *dst++ = base + static_cast<int32_t>(s.offsets[r] - first);
    out.keys.insert(out.keys.end(), s.keys + first, s.keys + s.offsets[end]);
  }
  batch->size += static_cast<int>(end - begin);
}

void BatchAssembler::AppendRows(const ColumnView& view, const uint32_t* rows, int64_t n, Batch* batch) const {
  GatherStrided(view.labels, rows, n, &batch->labels);
  GatherStrided(view.dense, rows, n, &batch->dense);
  for (size_t f = 0; f < view.sparse.size(); ++f) {
    const ColumnView::Sparse& s = view.sparse[f];
    Batch::Field& out = batch->fields[f];
    if (const int max_length = map_.sparse(static_cast<int>(f)).max_length; max_length > 0) {
      AppendSequence(s, rows, 0, n, static_cast<uint32_t>(max_length), &out);
      continue;
    }
    // Offsets first (one pass over the lengths), then the keys into the sized buffer:
    // no per-record vector growth.
    const size_t offsets_at = out.offsets.size();
    out.offsets.resize(offsets_at + static_cast<size_t>(n));
    int32_t* offsets = out.offsets.data() + offsets_at;
    const int32_t keys_at = offsets[-1];
    int32_t end = keys_at;
    for (int64_t i = 0; i < n; ++i) {
      end += static_cast<int32_t>(s.offsets[rows[i] + 1] - s.offsets[rows[i]]);
      offsets[i] = end;
    }
    out.keys.resize(static_cast<size_t>(end));
    uint64_t* keys = out.keys.data() + keys_at;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t a = s.offsets[rows[i]], b = s.offsets[rows[i] + 1];
      for (uint32_t k = a; k < b; ++k) *keys++ = s.keys[k];
    }
  }
  batch->size += static_cast<int>(n);
}

void BatchAssembler::Finish(Batch* batch) {
  for (size_t t = 0; t < table_fields_.size(); ++t) {
    std::vector<uint64_t>& unique = batch->tables[t].unique_keys;
    unique.clear();
    size_t total = 0;
    for (int f : table_fields_[t]) total += batch->fields[f].keys.size();
    dedup_.Reset(total);
    for (int f : table_fields_[t]) {
      Batch::Field& field = batch->fields[f];
      field.unique_index.resize(field.keys.size());
      const uint64_t* keys = field.keys.data();
      int32_t* index = field.unique_index.data();
      const size_t n = field.keys.size();
      for (size_t i = 0; i < n; ++i) index[i] = dedup_.Insert(keys[i], &unique);
    }
  }
}

}  // namespace mtps
