// Gate: a softmax gate over experts (Ma et al. 2018) and the mixture it weights:
// out = sum_j softmax(x W + b)_j * expert_j, for the experts named by ExpertRanges.
//
//   Gate<float> gate(backend, &params, "mmoe/gate0", /*in=*/128, {0, 8}, /*width=*/64, max_batch);
//   gate.Forward(x, experts.out(B));                       // gate.out(B): [B x 64]
//   ... consumers add dloss/dout into gate.out_grad(B) ...
//   gate.Backward(x, experts.out(B), experts.out_grad(B), &dx);  // both accumulated
//
// Buffers are allocated once for max_batch. Not thread-safe.
#pragma once

#include <string>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/linear.h"
#include "models/tensor.h"

namespace mtps::models {

template <typename T>
class Gate {
 public:
  Gate(Backend<T>* backend, DenseParameters<T>* params, const std::string& name, int in,
       ExpertRanges ranges, int width, int max_batch);

  MatrixView<T> out(int batch) { return out_.matrix(batch, width_); }
  MatrixView<T> out_grad(int batch) { return out_grad_.matrix(batch, width_); }
  // The softmax weights of the last Forward: [B x ranges.total()].
  MatrixView<T> weights(int batch) { return probs_.matrix(batch, ranges_.total()); }

  // experts: every expert of the level, expert e in columns [e*width, (e+1)*width).
  void Forward(MatrixView<T> x, MatrixView<T> experts);
  // Reads out_grad(); accumulates into experts_grad (same layout as experts) and dx.
  void Backward(MatrixView<T> x, MatrixView<T> experts, MatrixView<T> experts_grad,
                MatrixView<T>* dx);

 private:
  Backend<T>* backend_;
  ExpertRanges ranges_;
  int width_;
  Linear<T> logits_;
  DeviceArray<T> probs_;
  DeviceArray<T> probs_grad_;
  DeviceArray<T> out_;
  DeviceArray<T> out_grad_;
};

}  // namespace mtps::models
