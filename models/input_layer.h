// InputLayer: turns a ModelInput into the model's first matrix X = [pooled field 0 |
// ... | pooled field F-1 | dense features] (embedding-bag sum/mean over CSR fields,
// concatenated in place), and scatters dloss/dX back into per-table row gradients.
// It also checks the input (shapes, CSR offsets, row indices, NaN/Inf) before any use.
//
//   InputLayer<float> input(backend, layout, max_batch);
//   MTPS_RETURN_IF_ERROR(input.Load(in));  // validates, copies to the device if needed
//   input.Forward();                        // input.x(): [B x width]
//   ... model adds dloss/dX into input.dx() ...
//   input.Backward(&out);                   // out.row_grads[t]: [U_t x dim_t]
//
// Buffers are sized for max_batch once; per-table buffers grow with the largest batch
// seen. Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "models/backend.h"
#include "models/model_input.h"
#include "models/tensor.h"
#include "protocol/job_spec.h"
#include "base/status.h"

namespace mtps::models {

// The shapes a model's input has, taken from the JobSpec.
struct InputLayout {
  struct Field {
    std::string name;
    int table = 0;
    bool mean = false;
    // An encoded sequence (model.sequence din/bst): not pooled here; its columns of X are
    // the SequenceEncoder's output.
    bool sequence = false;
    int max_length = 0;  // > 0: a record with more values is refused
  };
  struct Table {
    std::string name;
    int dim = 0;
  };
  std::vector<Field> fields;
  std::vector<Table> tables;
  std::vector<std::string> dense;  // dense feature names
  std::vector<std::string> tasks;  // task names (labels, one column each)

  // Columns of X: every field's table dim, then the dense features.
  int width() const;
  static StatusOr<InputLayout> FromSpec(const JobSpec& spec);
};

template <typename T>
class InputLayer {
 public:
  InputLayer(Backend<T>* backend, InputLayout layout, int max_batch);

  // Checks `in` against the layout and stages it in backend memory. On error nothing
  // else may be called for this batch.
  Status Load(const ModelInputT<T>& in);
  int batch() const { return batch_; }
  bool has_labels() const { return has_labels_; }

  void Forward();
  MatrixView<T> x() { return x_.matrix(batch_, width_); }
  // Zeroed by Forward(); consumers accumulate dloss/dX into it.
  MatrixView<T> dx() { return dx_.matrix(batch_, width_); }
  // Labels [B x T] in backend memory (zeros when the input had none).
  const T* labels() const { return labels_dev_; }
  // Writes out->row_grads (resized to [U_t x dim_t] per table): ScatterRowGrads() then
  // CopyRowGradsToHost().
  void Backward(ModelOutputT<T>* out);
  // Zeroes the row gradients and scatter-adds dX of the pooled fields into them; an
  // encoder then adds its own through row_grad(t) before CopyRowGradsToHost().
  void ScatterRowGrads(ModelOutputT<T>* out);
  void CopyRowGradsToHost(ModelOutputT<T>* out);

  // The loaded batch, in backend memory, for encoders of sequence fields.
  int field_column(size_t f) const { return field_column_[f]; }
  const int32_t* field_rows(size_t f) const { return rows_dev_[f]; }
  const T* table_rows(size_t t) const { return table_dev_[t]; }
  T* row_grad(size_t t) { return grad_dev_[t]; }
  // Field f's values as a packed sequence batch (its CSR as is).
  SequenceShape sequence_shape(size_t f) const;

  const InputLayout& layout() const { return layout_; }

 private:
  // The pooling of field f into (forward) or out of (backward) its columns of `m`.
  PoolingArgs<T> FieldPooling(size_t f, MatrixView<T> m) const;
  Status Validate(const ModelInputT<T>& in) const;
  template <typename Elem>
  const Elem* Stage(const Elem* host, size_t count, DeviceArray<Elem, T>* staging);

  Backend<T>* backend_;
  InputLayout layout_;
  int max_batch_;
  int width_;
  std::vector<int> field_column_;  // first X column of each field
  int dense_column_ = 0;

  int batch_ = 0;
  bool has_labels_ = false;
  DeviceArray<T> x_, dx_;
  DeviceArray<T> zero_labels_;
  const T* labels_dev_ = nullptr;
  const T* dense_dev_ = nullptr;
  std::vector<const int32_t*> offsets_dev_, rows_dev_;
  std::vector<const T*> table_dev_;
  std::vector<int> table_rows_;
  std::vector<int> max_len_;  // per field: the most values of one record in this batch
  std::vector<int> items_;    // per field: its values in this batch
  std::vector<T*> grad_dev_;  // per table: where Backward scatters row gradients
  // Device copies of the host input; unused on host backends.
  DeviceArray<T> labels_stage_, dense_stage_;
  std::vector<DeviceArray<int32_t, T>> offsets_stage_, rows_stage_;
  std::vector<DeviceArray<T>> table_stage_, grad_stage_;
};

}  // namespace mtps::models
