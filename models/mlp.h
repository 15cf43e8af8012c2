// Mlp: a stack of Linear layers with ReLU and inverted dropout between them; with
// groups = E it is E independent MLPs (the experts of MMoE/PLE) over one shared input,
// computed as one wide first layer and grouped layers after it.
//
//   Mlp<float> experts(backend, &params, "mmoe/experts",
//                      {.in = 128, .units = {64}, .groups = 8, .relu_last = true}, max_batch);
//   experts.Forward(x, /*train=*/true, step_seed);   // experts.out(): [B x 8*64]
//   ... consumers add dloss/dout into experts.out_grad() ...
//   experts.Backward(x, &dx);                        // dx += dloss/dx; weight grads written
//
// Buffers are allocated once for max_batch; the output (and its gradient) may live in a
// caller's wider matrix (PLE puts every expert group of a level side by side). Not
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/linear.h"
#include "models/tensor.h"

namespace mtps::models {

struct MlpOptions {
  int in = 0;
  std::vector<int> units;  // per layer, per group; at least one layer
  int groups = 1;
  bool relu_last = true;   // false: the last layer is linear (a logit)
  float dropout = 0.0f;    // after every ReLU layer, in training only
  DenseInit last_bias = DenseInit::kZeros;  // of the last layer (the other biases start at 0)
};

template <typename T>
class Mlp {
 public:
  // When `external_out` is given, the last layer writes there (and its gradient is read
  // from `external_grad`), both with leading dimension `external_ld`.
  Mlp(Backend<T>* backend, DenseParameters<T>* params, const std::string& name,
      const MlpOptions& options, int max_batch, T* external_out = nullptr,
      T* external_grad = nullptr, int external_ld = 0);

  int out_cols() const { return options_.groups * options_.units.back(); }
  MatrixView<T> out(int batch) { return {out_data_, batch, out_cols(), out_ld_}; }
  MatrixView<T> out_grad(int batch) { return {grad_data_, batch, out_cols(), out_ld_}; }

  // x: [B x in]. `step_seed` drives dropout; ignored when !train.
  void Forward(MatrixView<T> x, bool train, uint64_t step_seed);
  // Reads out_grad(); writes weight gradients; dx, when given, is accumulated into.
  // Must follow the Forward() of the same batch.
  void Backward(MatrixView<T> x, MatrixView<T>* dx);

 private:
  uint64_t LayerSeed(size_t layer) const;

  Backend<T>* backend_;
  MlpOptions options_;
  uint64_t name_hash_ = 0;
  std::vector<Linear<T>> layers_;
  std::vector<DeviceArray<T>> activations_;  // one per layer but the last if external
  std::vector<DeviceArray<T>> gradients_;
  T* out_data_ = nullptr;
  T* grad_data_ = nullptr;
  int out_ld_ = 0;
  bool dropped_ = false;  // whether the last Forward applied dropout
  uint64_t step_seed_ = 0;
};

}  // namespace mtps::models
