// Gate forward/backward: logits, row softmax, weighted mixture, and back through each.
#include "models/gate.h"

namespace mtps::models {

template <typename T>
Gate<T>::Gate(Backend<T>* backend, DenseParameters<T>* params, const std::string& name, int in,
              ExpertRanges ranges, int width, int max_batch)
    : backend_(backend),
      ranges_(ranges),
      width_(width),
      logits_(params, name, in, ranges.total(), 1, Activation::kNone),
      probs_(backend, static_cast<size_t>(max_batch) * ranges.total()),
      probs_grad_(backend, static_cast<size_t>(max_batch) * ranges.total()),
      out_(backend, static_cast<size_t>(max_batch) * width),
      out_grad_(backend, static_cast<size_t>(max_batch) * width) {}

template <typename T>
void Gate<T>::Forward(MatrixView<T> x, MatrixView<T> experts) {
  const int batch = x.rows;
  MatrixView<T> p = weights(batch);
  logits_.Forward(*backend_, x, p);
  backend_->RowSoftmax(batch, p.cols, p.data, p.ld);
  MatrixView<T> o = out(batch);
  backend_->MixExperts(batch, width_, ranges_, p.data, p.ld, experts.data, experts.ld, o.data,
                       o.ld);
}

template <typename T>
void Gate<T>::Backward(MatrixView<T> x, MatrixView<T> experts, MatrixView<T> experts_grad,
                       MatrixView<T>* dx) {
  const int batch = x.rows;
  MatrixView<T> p = weights(batch);
  MatrixView<T> dp = probs_grad_.matrix(batch, p.cols);
  MatrixView<T> dout = out_grad(batch);
  backend_->MixExpertsBackward(batch, width_, ranges_, p.data, p.ld, experts.data, experts.ld,
                               dout.data, dout.ld, dp.data, dp.ld, experts_grad.data,
                               experts_grad.ld);
  backend_->RowSoftmaxBackward(batch, p.cols, p.data, p.ld, dp.data, dp.ld, dp.data, dp.ld);
  logits_.Backward(*backend_, x, p, dp, dx, T(1));
}

template class Gate<float>;
template class Gate<double>;

}  // namespace mtps::models
