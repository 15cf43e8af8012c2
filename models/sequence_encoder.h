// SequenceEncoder: turns one behaviour-sequence field (model.sequence), with its aligned
// side fields (model.sequence.side), into their columns of X. It gathers the field's items
// from their table rows into a packed batch (record after record, no padding: see
// SequenceShape), then runs DIN target attention against the
// target item, or BST: learned positions + a Transformer block, then target attention or
// the mean (DIN may add the positions too: din_positions).
//
//   SequenceEncoder<float> enc(backend, &params, spec.model.sequence, /*dim=*/16,
//                              /*max_length=*/20, max_batch);
//   enc.Forward(shape, rows, table, x.columns(target_col, 16), x.columns(seq_col, 16));
//   enc.Backward(shape, target, dx.columns(seq_col, 16), &dtarget);  // before the target's
//   enc.ScatterItemGrads(shape, rows, row_grads);                      // pooled scatter
//
// With side fields, each history item is [item ⊕ side values], the target [target ⊕ side
// targets] (DIN's goods ⊕ category), and the output is split back into the fields' columns.
// The items' row gradients are scatter-added into the table's row gradients, where the
// target's pooled gradient lands too (one table, one set of rows). Not thread-safe.
#pragma once

#include <glog/logging.h>

#include <memory>
#include <vector>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/target_attention.h"
#include "models/tensor.h"
#include "models/transformer_block.h"
#include "protocol/job_spec.h"

namespace mtps::models {

template <typename T>
class SequenceEncoder {
 public:
  // spec.encoder must be kDin or kBst (sum and mean are InputLayer's pooling). dims: the
  // item table's dim, then one per spec.side field (each history item is their
  // concatenation; attention and the block run on sum(dims) columns).
  SequenceEncoder(Backend<T>* backend, DenseParameters<T>* params, const SequenceSpec& spec,
                  std::vector<int> dims, int max_length, int max_batch);
  SequenceEncoder(Backend<T>* backend, DenseParameters<T>* params, const SequenceSpec& spec,
                  int dim, int max_length, int max_batch)
      : SequenceEncoder(backend, params, spec, std::vector<int>{dim}, max_length, max_batch) {}

  // One aligned field of the sequence (the items, then each side field): its values' rows
  // into `table` (CSR of the shared SequenceShape), and its target's and output's columns.
  struct Part {
    const int32_t* rows = nullptr;
    const T* table = nullptr;
    MatrixView<T> target;
    MatrixView<T> out;
  };

  // s: the items' shape (s.max_len <= max_length; s.dim is ignored, dims rule).
  void Forward(const SequenceShape& s, const std::vector<Part>& parts);
  // Must follow the Forward of the same batch (it reads that Forward's targets, which must
  // still hold their values): douts[p] is part p's output gradient, dtargets[p] accumulated into, weight gradients written, the items' gradients kept for
  // ScatterItemGrads.
  void Backward(const SequenceShape& s, const std::vector<MatrixView<T>>& douts,
                const std::vector<MatrixView<T>*>& dtargets);
  // table_grads[p][row of part p's value] += its gradient, scatter-added over duplicates.
  void ScatterItemGrads(const SequenceShape& s, const std::vector<const int32_t*>& rows,
                        const std::vector<T*>& table_grads);

  // One field, no side parts (the shapes above with one part).
  void Forward(const SequenceShape& s, const int32_t* rows, const T* table, MatrixView<T> target,
               MatrixView<T> out) {
    Forward(s, {Part{rows, table, target, out}});
  }
  void Backward(const SequenceShape& s, MatrixView<T> target, MatrixView<T> dout,
                MatrixView<T>* dtarget) {
    CHECK_EQ(target.data, target_view_.data) << "Backward reads the Forward's target";
    Backward(s, {dout}, {dtarget});
  }
  void ScatterItemGrads(const SequenceShape& s, const int32_t* rows, T* table_grad) {
    ScatterItemGrads(s, std::vector<const int32_t*>{rows}, std::vector<T*>{table_grad});
  }

 private:
  SequenceShape Shape(const SequenceShape& s, int dim) const;
  // Part p's columns of the concatenation.
  int Offset(size_t p) const { return offsets_[p]; }

  Backend<T>* backend_;
  DenseParameters<T>* params_;
  std::vector<int> dims_, offsets_;
  int dim_;  // sum of dims_
  bool attention_ = true;
  std::unique_ptr<TransformerBlock<T>> block_;  // BST only
  size_t positions_ = 0, positions_size_ = 0;   // BST, or DIN with din_positions
  std::unique_ptr<TargetAttention<T>> din_;     // null: mean over the items
  DeviceArray<T> items_, items_grad_, encoded_grad_;
  MatrixView<T> target_view_;  // the last Forward's (concatenated) target, read by Backward
  // Several parts only: the concatenated target, output (gradient) and dtarget, and one
  // part's items.
  DeviceArray<T> target_, out_, dtarget_, part_;
};

}  // namespace mtps::models
