// SequenceEncoder: gather of the items' rows (and their side values, side by side), BST's
// positions and Transformer block, DIN's target attention or the masked mean, and the
// scatter of item gradients back to rows.
#include "models/sequence_encoder.h"

#include <glog/logging.h>

#include <numeric>

namespace mtps::models {

template <typename T>
SequenceEncoder<T>::SequenceEncoder(Backend<T>* backend, DenseParameters<T>* params,
                                    const SequenceSpec& spec, std::vector<int> dims,
                                    int max_length, int max_batch)
    : backend_(backend), params_(params), dims_(std::move(dims)) {
  CHECK(spec.encoder == SequenceSpec::Encoder::kDin || spec.encoder == SequenceSpec::Encoder::kBst)
      << "SequenceEncoder: encoder " << SequenceEncoderName(spec.encoder) << " is a pooling";
  CHECK(!dims_.empty());
  offsets_.assign(dims_.size(), 0);
  std::partial_sum(dims_.begin(), dims_.end() - 1, offsets_.begin() + 1);
  dim_ = offsets_.back() + dims_.back();
  const int dim = dim_;
  const bool bst = spec.encoder == SequenceSpec::Encoder::kBst;
  const std::string name = bst ? "bst" : "din";
  const size_t cells = static_cast<size_t>(max_batch) * max_length * dim;
  if (bst || spec.din_positions) {
    positions_size_ = static_cast<size_t>(max_length) * dim;
    positions_ = params->Add(name + "/positions", positions_size_, DenseInit::kGlorotUniform,
                             max_length, dim);
  }
  if (bst) {
    block_ = std::make_unique<TransformerBlock<T>>(backend, params, name + "/block", dim,
                                                   spec.heads, spec.ffn_hidden, max_batch,
                                                   max_length);
    attention_ = spec.bst_pooling == SequenceSpec::BstPooling::kAttention;
  }
  if (attention_) {
    din_ = std::make_unique<TargetAttention<T>>(backend, params, name + "/attention", dim,
                                                spec.attention_hidden, max_batch * max_length,
                                                spec.weights_softmax);
  }
  items_ = DeviceArray<T>(backend, cells);
  items_grad_ = DeviceArray<T>(backend, cells);
  encoded_grad_ = DeviceArray<T>(backend, cells);
  if (dims_.size() > 1) {
    const size_t batch_cells = static_cast<size_t>(max_batch) * dim;
    target_ = DeviceArray<T>(backend, batch_cells);
    out_ = DeviceArray<T>(backend, batch_cells);
    dtarget_ = DeviceArray<T>(backend, batch_cells);
    part_ = DeviceArray<T>(backend, cells);
  }
}

template <typename T>
SequenceShape SequenceEncoder<T>::Shape(const SequenceShape& s, int dim) const {
  SequenceShape shape = s;
  shape.dim = dim;
  return shape;
}

template <typename T>
void SequenceEncoder<T>::Forward(const SequenceShape& items_shape, const std::vector<Part>& parts) {
  CHECK_EQ(parts.size(), dims_.size());
  const SequenceShape s = Shape(items_shape, dim_);
  const bool one = parts.size() == 1;
  if (one) {
    backend_->GatherSequence(s, parts[0].rows, parts[0].table, items_.data());
  } else {
    for (size_t p = 0; p < parts.size(); ++p) {
      backend_->GatherSequence(Shape(s, dims_[p]), parts[p].rows, parts[p].table, part_.data());
      backend_->CopyBlock(s.items, dims_[p], part_.data(), dims_[p], items_.data() + Offset(p),
                          dim_, false);
      backend_->CopyBlock(s.batch, dims_[p], parts[p].target.data, parts[p].target.ld,
                          target_.data() + Offset(p), dim_, false);
    }
  }
  target_view_ = one ? parts[0].target : target_.matrix(s.batch, dim_);
  MatrixView<T> target = target_view_;
  MatrixView<T> out = one ? parts[0].out : out_.matrix(s.batch, dim_);
  const T* encoded = items_.data();
  if (positions_size_ > 0) backend_->AddPositions(s, params_->values() + positions_, items_.data());
  if (block_ != nullptr) {
    block_->Forward(s, items_.data());
    encoded = block_->out(0).data;
  }
  if (din_ != nullptr) {
    din_->Forward(s, encoded, target, out);
  } else {
    backend_->SequenceWeightedSum(s, nullptr, encoded, out.data, out.ld);
  }
  if (!one) {
    for (size_t p = 0; p < parts.size(); ++p) {
      backend_->CopyBlock(s.batch, dims_[p], out.data + Offset(p), dim_, parts[p].out.data,
                          parts[p].out.ld, false);
    }
  }
}

template <typename T>
void SequenceEncoder<T>::Backward(const SequenceShape& items_shape,
                                  const std::vector<MatrixView<T>>& douts,
                                  const std::vector<MatrixView<T>*>& dtargets) {
  CHECK_EQ(douts.size(), dims_.size());
  CHECK_EQ(dtargets.size(), dims_.size());
  const SequenceShape s = Shape(items_shape, dim_);
  const bool one = dims_.size() == 1;
  MatrixView<T> dout = one ? douts[0] : out_.matrix(s.batch, dim_);
  MatrixView<T> dtarget = one ? *dtargets[0] : dtarget_.matrix(s.batch, dim_);
  if (!one) {
    for (size_t p = 0; p < dims_.size(); ++p) {
      backend_->CopyBlock(s.batch, dims_[p], douts[p].data, douts[p].ld, dout.data + Offset(p),
                          dim_, false);
    }
    backend_->Fill(dtarget.data, static_cast<size_t>(s.batch) * dim_, T(0));
  }
  const size_t cells = static_cast<size_t>(s.items) * dim_;
  const T* encoded = block_ != nullptr ? block_->out(0).data : items_.data();
  T* dencoded = block_ != nullptr ? encoded_grad_.data() : items_grad_.data();
  backend_->Fill(dencoded, cells, T(0));
  if (din_ != nullptr) {
    din_->Backward(s, encoded, target_view_, dout, dencoded, &dtarget);
  } else {
    backend_->SequenceWeightedSumBackward(s, nullptr, encoded, dout.data, dout.ld, nullptr,
                                          dencoded);
  }
  if (block_ != nullptr) {
    backend_->Fill(items_grad_.data(), cells, T(0));
    block_->Backward(s, items_.data(), dencoded, items_grad_.data());
  }
  if (positions_size_ > 0) {
    T* dpositions = params_->grads() + positions_;
    backend_->Fill(dpositions, positions_size_, T(0));
    backend_->AddPositionsBackward(s, items_grad_.data(), dpositions);
  }
  if (!one) {
    for (size_t p = 0; p < dims_.size(); ++p) {
      backend_->CopyBlock(s.batch, dims_[p], dtarget.data + Offset(p), dim_, dtargets[p]->data,
                          dtargets[p]->ld, true);
    }
  }
}

template <typename T>
void SequenceEncoder<T>::ScatterItemGrads(const SequenceShape& items_shape,
                                          const std::vector<const int32_t*>& rows,
                                          const std::vector<T*>& table_grads) {
  CHECK_EQ(rows.size(), dims_.size());
  const SequenceShape s = Shape(items_shape, dim_);
  if (dims_.size() == 1) {
    backend_->ScatterSequence(s, rows[0], items_grad_.data(), table_grads[0]);
    return;
  }
  for (size_t p = 0; p < dims_.size(); ++p) {
    backend_->CopyBlock(s.items, dims_[p], items_grad_.data() + Offset(p), dim_, part_.data(),
                        dims_[p], false);
    backend_->ScatterSequence(Shape(s, dims_[p]), rows[p], part_.data(), table_grads[p]);
  }
}

template class SequenceEncoder<float>;
template class SequenceEncoder<double>;

}  // namespace mtps::models
