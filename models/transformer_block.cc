// TransformerBlock forward/backward: QKV and output projections as GEMMs over all rows,
// the attention core per record and head in the backend, layer norms and the FFN.
#include "models/transformer_block.h"

namespace mtps::models {

template <typename T>
TransformerBlock<T>::TransformerBlock(Backend<T>* backend, DenseParameters<T>* params,
                                      const std::string& name, int dim, int heads,
                                      int ffn_hidden, int max_batch, int max_len)
    : backend_(backend),
      dim_(dim),
      heads_(heads),
      qkv_(params, name + "/qkv", dim, 3 * dim, 1, Activation::kNone),
      proj_(params, name + "/proj", dim, dim, 1, Activation::kNone),
      gamma1_(params->Add(name + "/ln1/gamma", dim, DenseInit::kOnes)),
      beta1_(params->Add(name + "/ln1/beta", dim, DenseInit::kZeros)),
      gamma2_(params->Add(name + "/ln2/gamma", dim, DenseInit::kOnes)),
      beta2_(params->Add(name + "/ln2/beta", dim, DenseInit::kZeros)),
      params_(params),
      residual2_(backend, static_cast<size_t>(max_batch) * max_len * dim),
      residual2_grad_(backend, static_cast<size_t>(max_batch) * max_len * dim),
      ffn_(backend, params, name + "/ffn",
           {.in = dim, .units = {ffn_hidden, dim}, .groups = 1, .relu_last = false},
           max_batch * max_len, residual2_.data(), residual2_grad_.data(), dim) {
  const size_t rows = static_cast<size_t>(max_batch) * max_len;
  const size_t cells = rows * dim;
  qkv_out_ = DeviceArray<T>(backend, 3 * cells);
  qkv_grad_ = DeviceArray<T>(backend, 3 * cells);
  probs_ = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * heads * max_len * max_len);
  for (DeviceArray<T>* a :
       {&attn_, &attn_grad_, &residual1_, &y1_, &y1_grad_, &xhat1_, &xhat2_, &out_}) {
    *a = DeviceArray<T>(backend, cells);
  }
  rstd1_ = DeviceArray<T>(backend, rows);
  rstd2_ = DeviceArray<T>(backend, rows);
}

template <typename T>
AttentionArgs<T> TransformerBlock<T>::Args(const SequenceShape& s) {
  return {.shape = s, .heads = heads_, .qkv = qkv_out_.data(), .probs = probs_.data(),
          .out = attn_.data()};
}

template <typename T>
void TransformerBlock<T>::Forward(const SequenceShape& s, const T* x) {
  const int rows = s.items, d = dim_;
  MatrixView<T> xv{const_cast<T*>(x), rows, d, d};
  qkv_.Forward(*backend_, xv, qkv_out_.matrix(rows, 3 * d));
  backend_->SelfAttention(Args(s));
  MatrixView<T> r1 = residual1_.matrix(rows, d);
  proj_.Forward(*backend_, attn_.matrix(rows, d), r1);
  backend_->CopyBlock(rows, d, x, d, r1.data, d, true);
  const T* p = params_->values();
  backend_->LayerNorm(rows, d, r1.data, d, p + gamma1_, p + beta1_, y1_.data(), d, xhat1_.data(),
                      rstd1_.data());
  MatrixView<T> y1 = y1_.matrix(rows, d);
  ffn_.Forward(y1, /*train=*/false, 0);
  backend_->CopyBlock(rows, d, y1.data, d, residual2_.data(), d, true);
  backend_->LayerNorm(rows, d, residual2_.data(), d, p + gamma2_, p + beta2_, out_.data(), d,
                      xhat2_.data(), rstd2_.data());
}

template <typename T>
void TransformerBlock<T>::Backward(const SequenceShape& s, const T* x, const T* dout, T* dx) {
  const int rows = s.items, d = dim_;
  const T* p = params_->values();
  T* g = params_->grads();
  backend_->LayerNormBackward(rows, d, xhat2_.data(), rstd2_.data(), p + gamma2_, dout, d,
                              residual2_grad_.data(), d, g + gamma2_, g + beta2_);
  // dy1 = dr2 (the residual) + FFN's backward of dr2.
  backend_->CopyBlock(rows, d, residual2_grad_.data(), d, y1_grad_.data(), d, false);
  MatrixView<T> dy1 = y1_grad_.matrix(rows, d);
  ffn_.Backward(y1_.matrix(rows, d), &dy1);
  // dr1, in place.
  backend_->LayerNormBackward(rows, d, xhat1_.data(), rstd1_.data(), p + gamma1_, dy1.data, d,
                              dy1.data, d, g + gamma1_, g + beta1_);
  MatrixView<T> dattn = attn_grad_.matrix(rows, d);
  proj_.Backward(*backend_, attn_.matrix(rows, d), residual1_.matrix(rows, d), dy1, &dattn, T(0));
  backend_->SelfAttentionBackward(Args(s), dattn.data, qkv_grad_.data());
  MatrixView<T> dxv{dx, rows, d, d};
  backend_->CopyBlock(rows, d, dy1.data, d, dx, d, true);
  qkv_.Backward(*backend_, MatrixView<T>{const_cast<T*>(x), rows, d, d},
                qkv_out_.matrix(rows, 3 * d), qkv_grad_.matrix(rows, 3 * d), &dxv, T(1));
}

template class TransformerBlock<float>;
template class TransformerBlock<double>;

}  // namespace mtps::models
