// DCN-v2's cross network (Wang et al. 2021): x_{l+1} = x_0 * (W_l x_l + b_l) + x_l, with W_l
// full-rank or the low-rank U_l V_l; the trunk reads x_L in place of X (the stacked form).
#include <string>
#include <vector>

#include "models/interaction.h"
#include "models/linear.h"

namespace mtps::models {
namespace {

template <typename T>
class CrossNetwork final : public Interaction<T> {
 public:
  CrossNetwork(Backend<T>* backend, DenseParameters<T>* params, const InteractionSpec& spec,
               int in, int max_batch)
      : backend_(backend), in_(in), rank_(spec.low_rank) {
    const size_t cells = static_cast<size_t>(max_batch) * in;
    for (int l = 0; l < spec.cross_layers; ++l) {
      const std::string name = "dcn/cross" + std::to_string(l);
      if (rank_ > 0) {
        down_.emplace_back(params, name + "/v", in, rank_, 1, Activation::kNone);
        up_.emplace_back(params, name + "/u", rank_, in, 1, Activation::kNone);
        low_.emplace_back(backend, static_cast<size_t>(max_batch) * rank_);
      } else {
        up_.emplace_back(params, name + "/w", in, in, 1, Activation::kNone);
      }
      mixed_.emplace_back(backend, cells);
      layers_out_.emplace_back(backend, cells);
    }
    grad_a_ = DeviceArray<T>(backend, cells);
    grad_b_ = DeviceArray<T>(backend, cells);
    mixed_grad_ = DeviceArray<T>(backend, cells);
    if (rank_ > 0) low_grad_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * rank_);
  }

  int out_cols() const override { return in_; }
  MatrixView<T> out(int batch) override { return layers_out_.back().matrix(batch, in_); }
  MatrixView<T> out_grad(int batch) override { return grad_a_.matrix(batch, in_); }

  void Forward(MatrixView<T> x0) override {
    const int batch = x0.rows;
    MatrixView<T> x = x0;
    for (size_t l = 0; l < up_.size(); ++l) {
      MatrixView<T> mixed = mixed_[l].matrix(batch, in_);
      if (rank_ > 0) {
        MatrixView<T> low = low_[l].matrix(batch, rank_);
        down_[l].Forward(*backend_, x, low);
        up_[l].Forward(*backend_, low, mixed);
      } else {
        up_[l].Forward(*backend_, x, mixed);
      }
      MatrixView<T> next = layers_out_[l].matrix(batch, in_);
      backend_->CopyBlock(batch, in_, x.data, x.ld, next.data, next.ld, false);
      backend_->Multiply(batch, in_, x0.data, x0.ld, mixed.data, mixed.ld, next.data, next.ld,
                         true);
      x = next;
    }
    backend_->Fill(grad_a_.data(), static_cast<size_t>(batch) * in_, T(0));
  }

  void Backward(MatrixView<T> x0, MatrixView<T>* dx0) override {
    const int batch = x0.rows;
    // g holds dloss/dx_{l+1}; the other buffer receives dloss/dx_l.
    MatrixView<T> g = grad_a_.matrix(batch, in_), g_prev = grad_b_.matrix(batch, in_);
    MatrixView<T> dmixed = mixed_grad_.matrix(batch, in_);
    for (size_t l = up_.size(); l-- > 0;) {
      MatrixView<T> mixed = mixed_[l].matrix(batch, in_);
      MatrixView<T> x = l == 0 ? x0 : layers_out_[l - 1].matrix(batch, in_);
      MatrixView<T>* dx = l == 0 ? dx0 : &g_prev;
      backend_->Multiply(batch, in_, g.data, g.ld, x0.data, x0.ld, dmixed.data, dmixed.ld, false);
      backend_->Multiply(batch, in_, g.data, g.ld, mixed.data, mixed.ld, dx0->data, dx0->ld, true);
      // The residual: dx_l = g (+ dx0's own share when l == 0, hence accumulate there).
      backend_->CopyBlock(batch, in_, g.data, g.ld, dx->data, dx->ld, l == 0);
      if (rank_ > 0) {
        MatrixView<T> low = low_[l].matrix(batch, rank_);
        MatrixView<T> dlow = low_grad_.matrix(batch, rank_);
        up_[l].Backward(*backend_, low, mixed, dmixed, &dlow, T(0));
        down_[l].Backward(*backend_, x, low, dlow, dx, T(1));
      } else {
        up_[l].Backward(*backend_, x, mixed, dmixed, dx, T(1));
      }
      std::swap(g, g_prev);
    }
  }

 private:
  Backend<T>* backend_;
  int in_, rank_;
  std::vector<Linear<T>> up_, down_;  // down_ only for low rank
  std::vector<DeviceArray<T>> mixed_, low_, layers_out_;
  DeviceArray<T> grad_a_, grad_b_, mixed_grad_, low_grad_;
};

}  // namespace

template <typename T>
std::unique_ptr<Interaction<T>> MakeCrossNetwork(Backend<T>* backend, DenseParameters<T>* params,
                                                 const InteractionSpec& spec, int in,
                                                 int max_batch) {
  return std::make_unique<CrossNetwork<T>>(backend, params, spec, in, max_batch);
}

template std::unique_ptr<Interaction<float>> MakeCrossNetwork(Backend<float>*,
                                                              DenseParameters<float>*,
                                                              const InteractionSpec&, int, int);
template std::unique_ptr<Interaction<double>> MakeCrossNetwork(Backend<double>*,
                                                               DenseParameters<double>*,
                                                               const InteractionSpec&, int, int);

}  // namespace mtps::models
