// Linear layer forward/backward over the backend: one sgemm per group plus a fused
// bias+activation pass.
#include "models/linear.h"

namespace mtps::models {

template <typename T>
Linear<T>::Linear(DenseParameters<T>* params, const std::string& name, int in, int out,
                  int groups, Activation act, DenseInit bias_init)
    : params_(params), in_(in), out_(out), groups_(groups), act_(act) {
  weight_offset_ = params->Add(name + "/w", static_cast<size_t>(groups) * in * out,
                               DenseInit::kGlorotUniform, in, out);
  bias_offset_ = params->Add(name + "/b", static_cast<size_t>(groups) * out, bias_init);
}

template <typename T>
void Linear<T>::Forward(Backend<T>& backend, MatrixView<T> x, MatrixView<T> y) const {
  const T* w = params_->values() + weight_offset_;
  for (int g = 0; g < groups_; ++g) {
    backend.Gemm(false, false, x.rows, out_, in_, T(1), x.data + g * in_, x.ld,
                 w + static_cast<size_t>(g) * in_ * out_, out_, T(0), y.data + g * out_, y.ld);
  }
  backend.BiasActivation(x.rows, groups_ * out_, params_->values() + bias_offset_, act_, y.data,
                         y.ld);
}

template <typename T>
void Linear<T>::Backward(Backend<T>& backend, MatrixView<T> x, MatrixView<T> y,
                         MatrixView<T> dy, MatrixView<T>* dx, T dx_beta) const {
  const int batch = x.rows;
  if (act_ == Activation::kRelu) {
    backend.ReluBackward(batch, groups_ * out_, y.data, y.ld, dy.data, dy.ld);
  }
  backend.ColumnSum(batch, groups_ * out_, dy.data, dy.ld, params_->grads() + bias_offset_);
  const T* w = params_->values() + weight_offset_;
  T* dw = params_->grads() + weight_offset_;
  for (int g = 0; g < groups_; ++g) {
    const size_t wg = static_cast<size_t>(g) * in_ * out_;
    // dW_g = x_g^T dy_g
    backend.Gemm(true, false, in_, out_, batch, T(1), x.data + g * in_, x.ld,
                 dy.data + g * out_, dy.ld, T(0), dw + wg, out_);
    if (dx != nullptr) {
      // dx_g = dx_beta dx_g + dy_g W_g^T
      backend.Gemm(false, true, batch, in_, out_, T(1), dy.data + g * out_, dy.ld, w + wg, out_,
                   dx_beta, dx->data + g * in_, dx->ld);
    }
  }
}

template class Linear<float>;
template class Linear<double>;

}  // namespace mtps::models
