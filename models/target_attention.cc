// TargetAttention forward/backward: DIN features, the scoring MLP over every item of the
// batch in one batch of GEMMs, and the per-record weighted sum.
#include "models/target_attention.h"

namespace mtps::models {
namespace {

std::vector<int> ScorerUnits(std::vector<int> hidden) {
  hidden.push_back(1);
  return hidden;
}

}  // namespace

template <typename T>
TargetAttention<T>::TargetAttention(Backend<T>* backend, DenseParameters<T>* params,
                                    const std::string& name, int dim,
                                    const std::vector<int>& hidden, int max_rows, bool softmax)
    : backend_(backend),
      dim_(dim),
      softmax_(softmax),
      scorer_(backend, params, name + "/scorer",
              // Raw weights start at 1 (the score's bias): DIN begins as sum pooling and
              // learns which items to weigh. From 0 the output and both its factors (scores,
              // items) would start near 0, a saddle that cost the first epochs.
              {.in = 4 * dim,
               .units = ScorerUnits(hidden),
               .groups = 1,
               .relu_last = false,
               .last_bias = softmax ? DenseInit::kZeros : DenseInit::kOnes},
              max_rows),
      features_(backend, static_cast<size_t>(max_rows) * 4 * dim),
      features_grad_(backend, static_cast<size_t>(max_rows) * 4 * dim) {
  if (softmax) weights_ = DeviceArray<T>(backend, max_rows);
}

template <typename T>
void TargetAttention<T>::Forward(const SequenceShape& s, const T* h, MatrixView<T> target,
                                 MatrixView<T> out) {
  const int rows = s.items;
  MatrixView<T> f = features_.matrix(rows, 4 * dim_);
  backend_->AttentionFeatures(s, h, target.data, target.ld, f.data);
  scorer_.Forward(f, /*train=*/false, 0);
  if (softmax_) {
    backend_->CopyBlock(1, rows, scorer_.out(rows).data, rows, weights_.data(), rows, false);
    backend_->SequenceSoftmax(s, weights_.data());
  }
  backend_->SequenceWeightedSum(s, weights(), h, out.data, out.ld);
}

template <typename T>
void TargetAttention<T>::Backward(const SequenceShape& s, const T* h, MatrixView<T> target,
                                  MatrixView<T> dout, T* dh, MatrixView<T>* dtarget) {
  const int rows = s.items;
  MatrixView<T> f = features_.matrix(rows, 4 * dim_);
  MatrixView<T> df = features_grad_.matrix(rows, 4 * dim_);
  T* dscores = scorer_.out_grad(rows).data;
  backend_->SequenceWeightedSumBackward(s, weights(), h, dout.data, dout.ld, dscores, dh);
  if (softmax_) backend_->SequenceSoftmaxBackward(s, weights_.data(), dscores);
  backend_->Fill(df.data, static_cast<size_t>(rows) * 4 * dim_, T(0));
  scorer_.Backward(f, &df);
  backend_->AttentionFeaturesBackward(s, h, target.data, target.ld, df.data, dh, dtarget->data,
                                      dtarget->ld);
}

template class TargetAttention<float>;
template class TargetAttention<double>;

}  // namespace mtps::models
