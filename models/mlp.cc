// Mlp forward/backward: Linear layers, ReLU fused into their epilogue, dropout masks
// recomputed from the step seed in backward instead of stored.
#include "models/mlp.h"

#include <glog/logging.h>

#include "models/kernel_math.h"

namespace mtps::models {

template <typename T>
Mlp<T>::Mlp(Backend<T>* backend, DenseParameters<T>* params, const std::string& name,
            const MlpOptions& options, int max_batch, T* external_out, T* external_grad,
            int external_ld)
    : backend_(backend), options_(options) {
  CHECK(!options.units.empty()) << "Mlp '" << name << "' needs at least one layer";
  name_hash_ = 1469598103934665603ull;
  for (char c : name) name_hash_ = (name_hash_ ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  const size_t n = options.units.size();
  const int g = options.groups;
  for (size_t l = 0; l < n; ++l) {
    const bool last = l + 1 == n;
    const Activation act = (!last || options.relu_last) ? Activation::kRelu : Activation::kNone;
    const std::string layer_name = name + "/l" + std::to_string(l);
    const DenseInit bias = last ? options.last_bias : DenseInit::kZeros;
    if (l == 0) {
      // Every group reads the same input: one wide layer is the same math in one sgemm.
      layers_.emplace_back(params, layer_name, options.in, g * options.units[0], 1, act, bias);
    } else {
      layers_.emplace_back(params, layer_name, options.units[l - 1], options.units[l], g, act, bias);
    }
    const bool external = last && external_out != nullptr;
    if (!external) {
      activations_.emplace_back(backend, static_cast<size_t>(max_batch) * g * options.units[l]);
      gradients_.emplace_back(backend, static_cast<size_t>(max_batch) * g * options.units[l]);
    }
  }
  if (external_out != nullptr) {
    out_data_ = external_out;
    grad_data_ = external_grad;
    out_ld_ = external_ld;
  } else {
    out_data_ = activations_.back().data();
    grad_data_ = gradients_.back().data();
    out_ld_ = out_cols();
  }
}

template <typename T>
uint64_t Mlp<T>::LayerSeed(size_t layer) const {
  return Mix64(step_seed_ ^ Mix64(name_hash_ + layer));
}

template <typename T>
void Mlp<T>::Forward(MatrixView<T> x, bool train, uint64_t step_seed) {
  const int batch = x.rows;
  const size_t n = layers_.size();
  dropped_ = train && options_.dropout > 0.0f;
  step_seed_ = step_seed;
  MatrixView<T> input = x;
  for (size_t l = 0; l < n; ++l) {
    const int cols = options_.groups * options_.units[l];
    MatrixView<T> y = l + 1 == n ? out(batch) : activations_[l].matrix(batch, cols);
    layers_[l].Forward(*backend_, input, y);
    const bool relu = l + 1 < n || options_.relu_last;
    if (dropped_ && relu) {
      backend_->Dropout(batch, cols, options_.dropout, LayerSeed(l), y.data, y.ld);
    }
    input = y;
  }
}

template <typename T>
void Mlp<T>::Backward(MatrixView<T> x, MatrixView<T>* dx) {
  const int batch = x.rows;
  const size_t n = layers_.size();
  for (size_t l = n; l-- > 0;) {
    const int cols = options_.groups * options_.units[l];
    const bool last = l + 1 == n;
    MatrixView<T> y = last ? out(batch) : activations_[l].matrix(batch, cols);
    MatrixView<T> dy = last ? out_grad(batch) : gradients_[l].matrix(batch, cols);
    if (dropped_ && (!last || options_.relu_last)) {
      backend_->Dropout(batch, cols, options_.dropout, LayerSeed(l), dy.data, dy.ld);
    }
    if (l == 0) {
      layers_[0].Backward(*backend_, x, y, dy, dx, T(1));
    } else {
      const int in_cols = options_.groups * options_.units[l - 1];
      MatrixView<T> x_l = activations_[l - 1].matrix(batch, in_cols);
      MatrixView<T> dx_l = gradients_[l - 1].matrix(batch, in_cols);
      layers_[l].Backward(*backend_, x_l, y, dy, &dx_l, T(0));
    }
  }
}

template class Mlp<float>;
template class Mlp<double>;

}  // namespace mtps::models
