// ColumnBlock (owned columns of a block of records) and ColumnView (read-only columns of
// a block, pointing into a ColumnBlock or straight into a mapped .mtb row group).
//
//   ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
//   csv_reader->Read(4096, &block);                 // appends records
//   ColumnView view = ColumnView::Of(block);        // what BatchAssembler reads
//   AppendRows(view, 0, view.rows, &other);          // copy records between blocks
//
// Columns follow the FeatureMap's order: tasks, dense fields, sparse fields of the spec.
// Thread-safety: none; a block belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mtps {

struct ColumnBlock {
  struct Sparse {
    std::vector<uint32_t> offsets{0};  // rows+1 entries; record r owns [offsets[r], offsets[r+1])
    std::vector<uint64_t> keys;
  };

  ColumnBlock() = default;
  ColumnBlock(int tasks, int dense, int sparse_fields)
      : num_tasks(tasks), num_dense(dense), sparse(sparse_fields) {}

  int num_tasks = 0;
  int num_dense = 0;
  int64_t rows = 0;
  std::vector<float> labels;  // [rows x num_tasks]
  std::vector<float> dense;   // [rows x num_dense]
  std::vector<Sparse> sparse;

  // Keeps every vector's capacity.
  void Clear() {
    rows = 0;
    labels.clear();
    dense.clear();
    for (Sparse& s : sparse) {
      s.offsets.resize(1);
      s.offsets[0] = 0;
      s.keys.clear();
    }
  }
};

// Columns of `rows` records. Labels and dense values may be a subset or permutation of
// the stored columns (a .mtb file may hold more columns than the spec uses): value
// (r, j) is at base[r * stride + column[j]]; `identity` says column[j] == j and stride
// equals the count, so whole rows copy as one block.
struct ColumnView {
  struct Strided {
    const float* base = nullptr;
    int stride = 0;
    std::vector<int> column;
    bool identity = true;
  };
  struct Sparse {
    const uint32_t* offsets = nullptr;
    const uint64_t* keys = nullptr;
  };
  int64_t rows = 0;
  Strided labels;
  Strided dense;
  std::vector<Sparse> sparse;

  static ColumnView Of(const ColumnBlock& block) {
    ColumnView v;
    Assign(block, &v);
    return v;
  }
  // Re-points `v` at `block` without reallocating its vectors.
  static void Assign(const ColumnBlock& block, ColumnView* v) {
    v->rows = block.rows;
    SetIdentity(block.labels.data(), block.num_tasks, &v->labels);
    SetIdentity(block.dense.data(), block.num_dense, &v->dense);
    v->sparse.resize(block.sparse.size());
    for (size_t f = 0; f < block.sparse.size(); ++f) {
      v->sparse[f].offsets = block.sparse[f].offsets.data();
      v->sparse[f].keys = block.sparse[f].keys.data();
    }
  }

 private:
  static void SetIdentity(const float* base, int n, Strided* s) {
    s->base = base;
    s->stride = n;
    s->identity = true;
    s->column.resize(n);
    for (int j = 0; j < n; ++j) s->column[j] = j;
  }
};

// Appends rows [begin, end) of `src` to `dst`, whose column counts must match the view's.
void AppendRows(const ColumnView& src, int64_t begin, int64_t end, ColumnBlock* dst);

}  // namespace mtps
