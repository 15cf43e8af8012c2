// Linear: y = act(x W + b), optionally as G independent groups side by side (expert
// layers: group g reads input columns [g*in, (g+1)*in) and writes [g*out, (g+1)*out)).
//
//   Linear<float> fc(&params, "tower0/l0", /*in=*/64, /*out=*/32, /*groups=*/1, Activation::kRelu);
//   fc.Forward(backend, x, y);
//   fc.Backward(backend, x, y, dy, &dx, /*dx_beta=*/1);  // dx += dy W^T; dW, db overwritten
//
// Weights are [in x out] per group (row-major) so forward needs no transpose; backward
// uses sgemm's transpose flags instead of copies. It holds only its block offsets: calls
// on distinct parameter arrays may run concurrently, calls on one array may not.
#pragma once

#include <string>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/tensor.h"

namespace mtps::models {

template <typename T>
class Linear {
 public:
  Linear(DenseParameters<T>* params, const std::string& name, int in, int out, int groups,
         Activation act, DenseInit bias_init = DenseInit::kZeros);

  // y[B x G*out] = act(x[B x G*in] W + b); y.rows = x.rows.
  void Forward(Backend<T>& backend, MatrixView<T> x, MatrixView<T> y) const;
  // Given y and dy = dloss/dy (overwritten with dloss/d(pre-activation)), writes dW and db
  // into the gradient array and, when dx is given, dx = dx_beta * dx + dy W^T.
  void Backward(Backend<T>& backend, MatrixView<T> x, MatrixView<T> y, MatrixView<T> dy,
                MatrixView<T>* dx, T dx_beta) const;

  int in() const { return in_; }
  int out() const { return out_; }
  int groups() const { return groups_; }

 private:
  DenseParameters<T>* params_;
  int in_, out_, groups_;
  Activation act_;
  size_t weight_offset_ = 0;
  size_t bias_offset_ = 0;
};

}  // namespace mtps::models
