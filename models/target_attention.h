// TargetAttention (DIN, Zhou et al. 2018): an MLP scores each item h of a sequence
// against the target item t from [h, t, h - t, h * t]; the output is sum_j w_j * h_j over
// the record's items, w_j = score_j (DIN's unnormalized weights: the output keeps how
// strongly the history as a whole matches the target; the score's bias starts at 1, so an
// untrained DIN is sum pooling) or, with `softmax`, the softmax of the scores over the
// record's items (a weighted mean of the items).
//
//   TargetAttention<float> din(backend, &params, "din", /*dim=*/16, {36}, max_items);
//   din.Forward(shape, h, target, out);                       // out: [B x dim]
//   din.Backward(shape, h, target, dout, dh, &dtarget);       // dh, dtarget accumulated
//
// Buffers are sized once for max_rows items (max_batch * max_length). Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/mlp.h"
#include "models/tensor.h"

namespace mtps::models {

template <typename T>
class TargetAttention {
 public:
  TargetAttention(Backend<T>* backend, DenseParameters<T>* params, const std::string& name,
                  int dim, const std::vector<int>& hidden, int max_rows, bool softmax = false);

  // h: [items x dim] packed (SequenceShape); target: [batch x dim]; writes out [batch x dim].
  void Forward(const SequenceShape& s, const T* h, MatrixView<T> target, MatrixView<T> out);
  // Must follow the Forward of the same batch. dh ([items x dim]) and dtarget are
  // accumulated into; weight gradients are written.
  void Backward(const SequenceShape& s, const T* h, MatrixView<T> target, MatrixView<T> dout,
                T* dh, MatrixView<T>* dtarget);

  // The weights of the last Forward: [items].
  const T* weights() { return softmax_ ? weights_.data() : scorer_.out(0).data; }

 private:
  Backend<T>* backend_;
  int dim_;
  bool softmax_;
  Mlp<T> scorer_;
  DeviceArray<T> weights_;  // softmax only
  DeviceArray<T> features_, features_grad_;
};

}  // namespace mtps::models
