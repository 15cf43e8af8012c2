// TransformerBlock: one post-norm Transformer encoder block over packed sequences (BST,
// Chen et al. 2019): y = LN(x + MHA(x)), out = LN(y + FFN(y)), multi-head self-attention
// within each record (SequenceShape), FFN = Linear-ReLU-Linear.
//
//   TransformerBlock<float> block(backend, &params, "bst/block", /*dim=*/16, /*heads=*/2,
//                                 /*ffn_hidden=*/64, max_batch * max_len, max_batch, max_len);
//   block.Forward(shape, x);                   // block.out(items): [items x dim]
//   block.Backward(shape, x, dout, dx);        // dx accumulated; weight gradients written
//
// Buffers are sized once for max_batch records of max_len items. Not thread-safe.
#pragma once

#include <string>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/linear.h"
#include "models/mlp.h"
#include "models/tensor.h"

namespace mtps::models {

template <typename T>
class TransformerBlock {
 public:
  TransformerBlock(Backend<T>* backend, DenseParameters<T>* params, const std::string& name,
                   int dim, int heads, int ffn_hidden, int max_batch, int max_len);

  // x: [items x dim] (contiguous).
  void Forward(const SequenceShape& s, const T* x);
  MatrixView<T> out(int rows) { return out_.matrix(rows, dim_); }
  // dout: [items x dim]; dx accumulated.
  void Backward(const SequenceShape& s, const T* x, const T* dout, T* dx);

 private:
  AttentionArgs<T> Args(const SequenceShape& s);

  Backend<T>* backend_;
  int dim_, heads_;
  Linear<T> qkv_, proj_;
  size_t gamma1_, beta1_, gamma2_, beta2_;
  DenseParameters<T>* params_;
  DeviceArray<T> qkv_out_, qkv_grad_, probs_, attn_, attn_grad_;
  DeviceArray<T> residual1_, y1_, y1_grad_, xhat1_, rstd1_, xhat2_, rstd2_, out_;
  DeviceArray<T> residual2_, residual2_grad_;
  Mlp<T> ffn_;  // writes residual2_, reads its gradient from residual2_grad_ (declared after)
};

}  // namespace mtps::models
