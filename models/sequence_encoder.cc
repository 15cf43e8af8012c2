// SequenceEncoder: gather of the items' rows, BST's positions and Transformer block, DIN's
// target attention or the masked mean, and the scatter of item gradients back to rows.
#include "models/sequence_encoder.h"

#include <glog/logging.h>

namespace mtps::models {

template <typename T>
SequenceEncoder<T>::SequenceEncoder(Backend<T>* backend, DenseParameters<T>* params,
                                    const SequenceSpec& spec, int dim, int max_length,
                                    int max_batch)
    : backend_(backend), params_(params), dim_(dim) {
  CHECK(spec.encoder == SequenceSpec::Encoder::kDin || spec.encoder == SequenceSpec::Encoder::kBst)
      << "SequenceEncoder: encoder " << SequenceEncoderName(spec.encoder) << " is a pooling";
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
}

template <typename T>
void SequenceEncoder<T>::Forward(const SequenceShape& s, const int32_t* rows, const T* table,
                                 MatrixView<T> target, MatrixView<T> out) {
  backend_->GatherSequence(s, rows, table, items_.data());
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
}

template <typename T>
void SequenceEncoder<T>::Backward(const SequenceShape& s, MatrixView<T> target,
                                  MatrixView<T> dout, MatrixView<T>* dtarget) {
  const size_t cells = static_cast<size_t>(s.items) * dim_;
  const T* encoded = block_ != nullptr ? block_->out(0).data : items_.data();
  T* dencoded = block_ != nullptr ? encoded_grad_.data() : items_grad_.data();
  backend_->Fill(dencoded, cells, T(0));
  if (din_ != nullptr) {
    din_->Backward(s, encoded, target, dout, dencoded, dtarget);
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
}

template <typename T>
void SequenceEncoder<T>::ScatterItemGrads(const SequenceShape& s, const int32_t* rows,
                                          T* table_grad) {
  backend_->ScatterSequence(s, rows, items_grad_.data(), table_grad);
}

template class SequenceEncoder<float>;
template class SequenceEncoder<double>;

}  // namespace mtps::models
