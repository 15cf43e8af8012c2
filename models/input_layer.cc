// InputLayer: input validation (shapes, CSR, NaN), staging to the backend, embedding-bag
// pooling into X and the scatter-add of row gradients.
#include "models/input_layer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace mtps::models {

int InputLayout::width() const {
  int w = static_cast<int>(dense.size());
  for (const Field& f : fields) w += tables[f.table].dim;
  return w;
}

StatusOr<InputLayout> InputLayout::FromSpec(const JobSpec& spec) {
  InputLayout layout;
  for (const TableSpec& t : spec.tables) {
    if (t.dim <= 0) {
      return InvalidArgument("table '" + t.name + "': dim must be > 0, got " +
                             std::to_string(t.dim));
    }
    layout.tables.push_back({t.name, t.dim});
  }
  for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
    const SparseFieldSpec& f = spec.sparse_fields[i];
    int table = spec.TableIndex(f.table);
    if (table < 0) {
      return NotFound("sparse_fields[" + std::to_string(i) + "] '" + f.name +
                      "': unknown table '" + f.table + "'");
    }
    // A sequence whose encoder is sum or mean is pooled like any multi-valued field.
    const SequenceSpec::Encoder encoder = spec.model.sequence.encoder;
    const bool sequence = f.pooling == Pooling::kSequence;
    const bool encoded = sequence && encoder != SequenceSpec::Encoder::kSum &&
                         encoder != SequenceSpec::Encoder::kMean;
    const bool mean = f.pooling == Pooling::kMean ||
                      (sequence && encoder == SequenceSpec::Encoder::kMean);
    layout.fields.push_back({f.name, table, mean, encoded, sequence ? f.max_length : 0});
  }
  for (const DenseFieldSpec& d : spec.dense_fields) layout.dense.push_back(d.name);
  for (const TaskSpec& t : spec.tasks) layout.tasks.push_back(t.name);
  if (layout.tasks.empty()) return InvalidArgument("tasks: a model needs at least one task");
  if (layout.width() == 0) {
    return InvalidArgument("the model has no input: no sparse fields and no dense fields");
  }
  return layout;
}

template <typename T>
InputLayer<T>::InputLayer(Backend<T>* backend, InputLayout layout, int max_batch)
    : backend_(backend), layout_(std::move(layout)), max_batch_(max_batch) {
  width_ = layout_.width();
  int column = 0;
  for (const InputLayout::Field& f : layout_.fields) {
    field_column_.push_back(column);
    column += layout_.tables[f.table].dim;
  }
  dense_column_ = column;
  const size_t nf = layout_.fields.size(), nt = layout_.tables.size();
  const size_t tasks = layout_.tasks.size(), dense = layout_.dense.size();
  x_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * width_);
  dx_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * width_);
  zero_labels_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * tasks);
  offsets_dev_.resize(nf);
  rows_dev_.resize(nf);
  table_dev_.resize(nt);
  table_rows_.resize(nt);
  max_len_.resize(nf);
  items_.resize(nf);
  grad_dev_.resize(nt);
  if (!backend->is_host()) {
    labels_stage_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * tasks);
    dense_stage_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * dense + 1);
    for (size_t f = 0; f < nf; ++f) {
      offsets_stage_.emplace_back(backend, static_cast<size_t>(max_batch) + 1);
      rows_stage_.emplace_back(backend, static_cast<size_t>(max_batch) * 4);
    }
    for (size_t t = 0; t < nt; ++t) {
      const size_t guess = static_cast<size_t>(max_batch) * layout_.tables[t].dim;
      table_stage_.emplace_back(backend, guess);
      grad_stage_.emplace_back(backend, guess);
    }
  }
}

template <typename T>
Status InputLayer<T>::Validate(const ModelInputT<T>& in) const {
  const int b = in.batch_size;
  if (b <= 0 || b > max_batch_) {
    return InvalidArgument("batch_size " + std::to_string(b) + " outside [1, " +
                           std::to_string(max_batch_) + "] (the model's max batch)");
  }
  if (in.fields.size() != layout_.fields.size()) {
    return InvalidArgument("input has " + std::to_string(in.fields.size()) +
                           " sparse fields, the model " + std::to_string(layout_.fields.size()));
  }
  if (in.tables.size() != layout_.tables.size()) {
    return InvalidArgument("input has " + std::to_string(in.tables.size()) +
                           " tables, the model " + std::to_string(layout_.tables.size()));
  }
  const size_t num_dense = layout_.dense.size();
  if (num_dense > 0 && in.dense == nullptr) {
    return InvalidArgument("input has no dense features, the model expects " +
                           std::to_string(num_dense));
  }
  for (size_t t = 0; t < in.tables.size(); ++t) {
    const auto& table = in.tables[t];
    const std::string& name = layout_.tables[t].name;
    const int dim = layout_.tables[t].dim;
    if (table.num_rows < 0 || (table.num_rows > 0 && table.rows == nullptr)) {
      return InvalidArgument("table '" + name + "': " + std::to_string(table.num_rows) +
                             " rows but no row buffer");
    }
    const size_t n = static_cast<size_t>(table.num_rows) * dim;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(static_cast<double>(table.rows[i]))) {
        std::ostringstream m;
        m << "embedding of table '" << name << "' row " << i / dim << " column " << i % dim
          << " is " << table.rows[i] << " (non-finite value in pulled rows)";
        return InvalidArgument(m.str());
      }
    }
  }
  for (size_t f = 0; f < in.fields.size(); ++f) {
    const auto& field = in.fields[f];
    const InputLayout::Field& lf = layout_.fields[f];
    const int num_rows = in.tables[lf.table].num_rows;
    if (field.offsets == nullptr) {
      return InvalidArgument("sparse field '" + lf.name + "': no CSR offsets");
    }
    if (field.offsets[0] != 0) {
      return InvalidArgument("sparse field '" + lf.name + "': offsets[0] is " +
                             std::to_string(field.offsets[0]) + ", expected 0");
    }
    for (int r = 0; r < b; ++r) {
      if (field.offsets[r + 1] < field.offsets[r]) {
        return InvalidArgument("sparse field '" + lf.name + "': offsets decrease at record " +
                               std::to_string(r) + " (" + std::to_string(field.offsets[r]) +
                               " -> " + std::to_string(field.offsets[r + 1]) + ")");
      }
    }
    if (lf.max_length > 0) {
      for (int r = 0; r < b; ++r) {
        if (field.offsets[r + 1] - field.offsets[r] > lf.max_length) {
          return InvalidArgument("sequence field '" + lf.name + "': record " + std::to_string(r) +
                                 " has " + std::to_string(field.offsets[r + 1] - field.offsets[r]) +
                                 " values, more than max_length " +
                                 std::to_string(lf.max_length));
        }
      }
    }
    const int nnz = field.offsets[b];
    if (nnz > 0 && field.rows == nullptr) {
      return InvalidArgument("sparse field '" + lf.name + "': no row indices");
    }
    for (int i = 0; i < nnz; ++i) {
      if (field.rows[i] < 0 || field.rows[i] >= num_rows) {
        return InvalidArgument("sparse field '" + lf.name + "': value " + std::to_string(i) +
                               " names row " + std::to_string(field.rows[i]) + " of table '" +
                               layout_.tables[lf.table].name + "', which has " +
                               std::to_string(num_rows) + " rows");
      }
    }
  }
  for (size_t i = 0; i < static_cast<size_t>(b) * num_dense; ++i) {
    if (!std::isfinite(static_cast<double>(in.dense[i]))) {
      std::ostringstream m;
      m << "dense feature '" << layout_.dense[i % num_dense] << "' of record " << i / num_dense
        << " is " << in.dense[i];
      return InvalidArgument(m.str());
    }
  }
  if (in.labels != nullptr) {
    const size_t tasks = layout_.tasks.size();
    for (size_t i = 0; i < static_cast<size_t>(b) * tasks; ++i) {
      if (!std::isfinite(static_cast<double>(in.labels[i]))) {
        std::ostringstream m;
        m << "label of task '" << layout_.tasks[i % tasks] << "' of record " << i / tasks
          << " is " << in.labels[i];
        return InvalidArgument(m.str());
      }
    }
  }
  return Status::OK();
}

template <typename T>
template <typename Elem>
const Elem* InputLayer<T>::Stage(const Elem* host, size_t count, DeviceArray<Elem, T>* staging) {
  if (backend_->is_host()) return host;
  staging->Reserve(count);
  backend_->CopyToDevice(host, staging->data(), count * sizeof(Elem));
  return staging->data();
}

template <typename T>
Status InputLayer<T>::Load(const ModelInputT<T>& in) {
  batch_ = 0;
  MTPS_RETURN_IF_ERROR(Validate(in));
  batch_ = in.batch_size;
  const size_t tasks = layout_.tasks.size(), dense = layout_.dense.size();
  has_labels_ = in.labels != nullptr;
  labels_dev_ = has_labels_ ? Stage(in.labels, batch_ * tasks, &labels_stage_)
                            : zero_labels_.data();
  dense_dev_ = dense > 0 ? Stage(in.dense, batch_ * dense, &dense_stage_) : nullptr;
  for (size_t f = 0; f < layout_.fields.size(); ++f) {
    const auto& field = in.fields[f];
    const bool host = backend_->is_host();
    offsets_dev_[f] = Stage(field.offsets, batch_ + 1, host ? nullptr : &offsets_stage_[f]);
    items_[f] = field.offsets[batch_];
    max_len_[f] = 0;
    for (int r = 0; r < batch_; ++r) {
      max_len_[f] = std::max(max_len_[f], field.offsets[r + 1] - field.offsets[r]);
    }
    rows_dev_[f] = Stage(field.rows, field.offsets[batch_], host ? nullptr : &rows_stage_[f]);
  }
  for (size_t t = 0; t < layout_.tables.size(); ++t) {
    table_rows_[t] = in.tables[t].num_rows;
    const size_t n = static_cast<size_t>(table_rows_[t]) * layout_.tables[t].dim;
    table_dev_[t] = Stage(in.tables[t].rows, n, backend_->is_host() ? nullptr : &table_stage_[t]);
  }
  return Status::OK();
}

template <typename T>
PoolingArgs<T> InputLayer<T>::FieldPooling(size_t f, MatrixView<T> m) const {
  const InputLayout::Field& lf = layout_.fields[f];
  PoolingArgs<T> args;
  args.batch = batch_;
  args.dim = layout_.tables[lf.table].dim;
  args.mean = lf.mean;
  args.offsets = offsets_dev_[f];
  args.rows = rows_dev_[f];
  args.num_rows = table_rows_[lf.table];
  args.table = table_dev_[lf.table];
  args.out = m.data + field_column_[f];
  args.ld = m.ld;
  return args;
}

template <typename T>
void InputLayer<T>::Forward() {
  MatrixView<T> xm = x();
  for (size_t f = 0; f < layout_.fields.size(); ++f) {
    if (!layout_.fields[f].sequence) backend_->PoolForward(FieldPooling(f, xm));
  }
  const int dense = static_cast<int>(layout_.dense.size());
  if (dense > 0) {
    backend_->CopyBlock(batch_, dense, dense_dev_, dense, xm.data + dense_column_, xm.ld, false);
  }
  backend_->Fill(dx_.data(), static_cast<size_t>(batch_) * width_, T(0));
}

template <typename T>
SequenceShape InputLayer<T>::sequence_shape(size_t f) const {
  return {.batch = batch_, .max_len = max_len_[f], .dim = layout_.tables[layout_.fields[f].table].dim,
          .items = items_[f], .offsets = offsets_dev_[f]};
}

template <typename T>
void InputLayer<T>::Backward(ModelOutputT<T>* out) {
  ScatterRowGrads(out);
  CopyRowGradsToHost(out);
}

template <typename T>
void InputLayer<T>::ScatterRowGrads(ModelOutputT<T>* out) {
  const size_t nt = layout_.tables.size();
  out->row_grads.resize(nt);
  std::vector<T*>& grads = grad_dev_;
  for (size_t t = 0; t < nt; ++t) {
    const size_t n = static_cast<size_t>(table_rows_[t]) * layout_.tables[t].dim;
    out->row_grads[t].resize(n);
    if (backend_->is_host()) {
      grads[t] = out->row_grads[t].data();
    } else {
      grad_stage_[t].Reserve(n);
      grads[t] = grad_stage_[t].data();
    }
    backend_->Fill(grads[t], n, T(0));
  }
  MatrixView<T> d = dx();
  for (size_t f = 0; f < layout_.fields.size(); ++f) {
    if (!layout_.fields[f].sequence) {
      backend_->PoolBackward(FieldPooling(f, d), grads[layout_.fields[f].table]);
    }
  }
}

template <typename T>
void InputLayer<T>::CopyRowGradsToHost(ModelOutputT<T>* out) {
  const size_t nt = layout_.tables.size();
  if (!backend_->is_host()) {
    for (size_t t = 0; t < nt; ++t) {
      backend_->CopyToHost(grad_dev_[t], out->row_grads[t].data(),
                           out->row_grads[t].size() * sizeof(T));
    }
  }
}

template class InputLayer<float>;
template class InputLayer<double>;

}  // namespace mtps::models
