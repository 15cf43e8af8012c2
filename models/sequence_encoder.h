// SequenceEncoder: turns one behaviour-sequence field (model.sequence) into `dim` columns
// of X. It gathers the field's items from their table rows into a packed batch (record
// after record, no padding: see SequenceShape), then runs DIN target attention against the
// target item, or BST: learned positions + a Transformer block, then target attention or
// the mean (DIN may add the positions too: din_positions).
//
//   SequenceEncoder<float> enc(backend, &params, spec.model.sequence, /*dim=*/16,
//                              /*max_length=*/20, max_batch);
//   enc.Forward(shape, rows, table, x.columns(target_col, 16), x.columns(seq_col, 16));
//   enc.Backward(shape, target, dx.columns(seq_col, 16), &dtarget);  // before the target's
//   enc.ScatterItemGrads(shape, rows, row_grads);                      // pooled scatter
//
// The items' row gradients are scatter-added into the table's row gradients, where the
// target's pooled gradient lands too (one table, one set of rows). Not thread-safe.
#pragma once

#include <memory>

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
  // spec.encoder must be kDin or kBst (sum and mean are InputLayer's pooling).
  SequenceEncoder(Backend<T>* backend, DenseParameters<T>* params, const SequenceSpec& spec,
                  int dim, int max_length, int max_batch);

  // s.max_len <= max_length. rows: the field's CSR row indices into `table`.
  void Forward(const SequenceShape& s, const int32_t* rows, const T* table, MatrixView<T> target,
               MatrixView<T> out);
  // Must follow the Forward of the same batch: dtarget accumulated, weight gradients
  // written, the items' gradients kept for ScatterItemGrads.
  void Backward(const SequenceShape& s, MatrixView<T> target, MatrixView<T> dout,
                MatrixView<T>* dtarget);
  // table_grad[row of item] += the item's gradient, scatter-added over duplicates.
  void ScatterItemGrads(const SequenceShape& s, const int32_t* rows, T* table_grad);

 private:
  Backend<T>* backend_;
  DenseParameters<T>* params_;
  int dim_;
  bool attention_ = true;
  std::unique_ptr<TransformerBlock<T>> block_;  // BST only
  size_t positions_ = 0, positions_size_ = 0;   // BST, or DIN with din_positions
  std::unique_ptr<TargetAttention<T>> din_;     // null: mean over the items
  DeviceArray<T> items_, items_grad_, encoded_grad_;
};

}  // namespace mtps::models
