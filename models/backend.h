// Backend: the one interface through which layers and models touch numbers, with a CPU
// implementation (OpenBLAS + loops, float and double) and a CUDA one (cuBLAS + kernels,
// float). Layer code is written once against it; pointers are in the backend's memory.
//
//   MTPS_ASSIGN_OR_RETURN(auto backend, MakeBackend<float>("cuda:0", /*cpu_threads=*/2));
//   float* w = static_cast<float*>(backend->AllocateBytes(n * sizeof(float)));
//   backend->Gemm(false, false, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
//
// Every matrix is row-major with an explicit leading dimension. Calls are issued in
// order (CUDA: on one stream); Synchronize() waits for them. A backend is used by one
// thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "models/kernel_math.h"
#include "base/status.h"

namespace mtps::models {

enum class Activation { kNone, kRelu };

// Up to two column ranges of experts, counted in experts of `width` columns each, that a
// gate mixes: range 0 is [begin0, begin0 + count0), range 1 likewise (count1 may be 0).
// Two ranges cover PLE, where a task gate mixes its own experts and the shared ones.
struct ExpertRanges {
  int begin0 = 0, count0 = 0;
  int begin1 = 0, count1 = 0;
  MTPS_HOST_DEVICE int total() const { return count0 + count1; }
  // The expert column block of the j-th mixed expert, j < total().
  MTPS_HOST_DEVICE int expert(int j) const {
    return j < count0 ? begin0 + j : begin1 + (j - count0);
  }
};

// One sparse field pooled into a column slice of the model's input matrix.
template <typename T>
struct PoolingArgs {
  int batch = 0;
  int dim = 0;
  bool mean = false;
  const int32_t* offsets = nullptr;  // [batch + 1] CSR offsets, backend memory
  const int32_t* rows = nullptr;     // [offsets[batch]] row of each value in `table`
  int num_rows = 0;                  // rows in `table`
  const T* table = nullptr;          // [num_rows x dim] pulled embedding rows
  T* out = nullptr;                  // forward: pooled [batch x dim] at `out`, stride ld
  int ld = 0;
};

// A batch of variable-length sequences, packed: record r's len_r = offsets[r+1] - offsets[r]
// items are rows [offsets[r], offsets[r+1]) of an [items x dim] tensor, oldest first.
// Nothing is padded, so no compute goes to padding; max_len (the longest record of the
// batch) bounds what is per position: attention weights and positions.
struct SequenceShape {
  int batch = 0;
  int max_len = 0;
  int dim = 0;
  int items = 0;                     // offsets[batch]
  const int32_t* offsets = nullptr;  // [batch + 1], backend memory
};

// Multi-head self-attention within each record of a packed sequence batch: qkv is
// [items x 3*dim] (Q, then K, then V columns; head h owns columns [h*dim/heads,
// (h+1)*dim/heads) of each), probs [batch x heads x max_len x max_len] keeps the attention
// weights for backward (entries past a record's length unused), out is [items x dim]. An
// item attends to the items of its own record only.
template <typename T>
struct AttentionArgs {
  SequenceShape shape;
  int heads = 1;
  const T* qkv = nullptr;
  T* probs = nullptr;
  T* out = nullptr;
};

template <typename T>
class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu" or "cuda:N".
  virtual std::string device() const = 0;
  // Whether backend memory is host memory (then host pointers may be passed directly).
  virtual bool is_host() const = 0;

  // ---- memory: zero-filled allocations; copies are ordered with the compute stream.
  virtual void* AllocateBytes(size_t bytes) = 0;
  virtual void FreeBytes(void* p) = 0;
  virtual void CopyToDevice(const void* host, void* dev, size_t bytes) = 0;
  virtual void CopyToHost(const void* dev, void* host, size_t bytes) = 0;
  virtual void Synchronize() = 0;
  // x[0..n) = value.
  virtual void Fill(T* x, size_t n, T value) = 0;

  // ---- dense algebra
  // C = alpha * op(A) * op(B) + beta * C; op(A) is [m x k], op(B) [k x n], C [m x n].
  virtual void Gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a,
                    int lda, const T* b, int ldb, T beta, T* c, int ldc) = 0;
  // y = act(y + bias) row by row (bias has `cols` entries): the fused epilogue of Linear.
  virtual void BiasActivation(int rows, int cols, const T* bias, Activation act, T* y,
                              int ldy) = 0;
  // dy *= (y > 0): ReLU backward in place, using the layer's output.
  virtual void ReluBackward(int rows, int cols, const T* y, int ldy, T* dy, int lddy) = 0;
  // out[c] = sum_r x[r, c] (overwrites): the bias gradient.
  virtual void ColumnSum(int rows, int cols, const T* x, int ldx, T* out) = 0;
  // dst = src, or dst += src when `accumulate`: concatenation and its backward.
  virtual void CopyBlock(int rows, int cols, const T* src, int lds, T* dst, int ldd,
                         bool accumulate) = 0;
  // x *= mask / (1 - rate), mask[r, c] = hash(seed, r * cols + c) >= rate: inverted
  // dropout. The mask is recomputed, not stored, so the same call is its own backward.
  virtual void Dropout(int rows, int cols, float rate, uint64_t seed, T* x, int ldx) = 0;

  // ---- gates: softmax over each row, and the gated mixture of experts
  virtual void RowSoftmax(int rows, int cols, T* x, int ldx) = 0;
  // dx = y * (dy - sum_c dy * y) for y = softmax; dx may alias dy.
  virtual void RowSoftmaxBackward(int rows, int cols, const T* y, int ldy, const T* dy,
                                  int lddy, T* dx, int lddx) = 0;
  // out[r, :] = sum_j gate[r, j] * experts[r, expert(j) * width + :].
  virtual void MixExperts(int rows, int width, const ExpertRanges& ranges, const T* gate,
                          int ldg, const T* experts, int lde, T* out, int ldo) = 0;
  // dgate[r, j] = <dout[r, :], expert_j[r, :]> (overwrites);
  // dexperts[r, expert_j] += gate[r, j] * dout[r, :].
  virtual void MixExpertsBackward(int rows, int width, const ExpertRanges& ranges,
                                  const T* gate, int ldg, const T* experts, int lde,
                                  const T* dout, int lddo, T* dgate, int lddg, T* dexperts,
                                  int ldde) = 0;

  // ---- embedding bags
  // args.out[r, :] = sum (or mean) of table[rows[i], :] over i in [offsets[r], offsets[r+1]).
  virtual void PoolForward(const PoolingArgs<T>& args) = 0;
  // table_grad[rows[i], :] += dout[r, :] (/ count for mean), scatter-added over duplicates.
  // `args.out` holds dout here; `table_grad` is [num_rows x dim].
  virtual void PoolBackward(const PoolingArgs<T>& args, T* table_grad) = 0;

  // ---- element-wise and row ops of the interaction and sequence layers
  // c = a * b element-wise, or c += a * b when `accumulate`.
  virtual void Multiply(int rows, int cols, const T* a, int lda, const T* b, int ldb, T* c,
                        int ldc, bool accumulate) = 0;
  // y = gamma * xhat + beta with xhat = (x - mean) * rstd per row; keeps xhat [rows x cols]
  // and rstd [rows] for backward. y may alias x.
  virtual void LayerNorm(int rows, int cols, const T* x, int ldx, const T* gamma,
                         const T* beta, T* y, int ldy, T* xhat, T* rstd) = 0;
  // dx = d(layer norm)/dx^T dy (overwrites; may alias dy); dgamma, dbeta overwritten.
  virtual void LayerNormBackward(int rows, int cols, const T* xhat, const T* rstd,
                                 const T* gamma, const T* dy, int lddy, T* dx, int lddx,
                                 T* dgamma, T* dbeta) = 0;
  // x holds `fields` embeddings of `dim` columns side by side per row; out[r, :] gets the
  // fields*(fields-1)/2 dot products <x_i, x_j>, i < j, in row-major (i, j) order.
  virtual void PairwiseDot(int rows, int fields, int dim, const T* x, int ldx, T* out,
                           int ldo) = 0;
  // dx += d(pairwise dots)/dx^T dout.
  virtual void PairwiseDotBackward(int rows, int fields, int dim, const T* x, int ldx,
                                   const T* dout, int lddo, T* dx, int lddx) = 0;
  // out[r, c] = 0.5 * ((sum_f x_f[c])^2 - sum_f x_f[c]^2): the FM second-order term per column.
  virtual void FmInteraction(int rows, int fields, int dim, const T* x, int ldx, T* out,
                             int ldo) = 0;
  // dx_f[c] += dout[c] * (sum_g x_g[c] - x_f[c]).
  virtual void FmInteractionBackward(int rows, int fields, int dim, const T* x, int ldx,
                                     const T* dout, int lddo, T* dx, int lddx) = 0;

  // ---- packed sequences (see SequenceShape); item i of record r is row offsets[r] + j
  // out[i, :] = table[rows[i], :] for every item i.
  virtual void GatherSequence(const SequenceShape& s, const int32_t* rows, const T* table,
                              T* out) = 0;
  // table_grad[rows[i], :] += dout[i, :], scatter-added over duplicates.
  virtual void ScatterSequence(const SequenceShape& s, const int32_t* rows, const T* dout,
                               T* table_grad) = 0;
  // x[item j of r, :] += positions[len_r - 1 - j, :]: position 0 is the most recent item.
  virtual void AddPositions(const SequenceShape& s, const T* positions, T* x) = 0;
  // dpositions[len_r - 1 - j, :] += dx[item j of r, :] (accumulates).
  virtual void AddPositionsBackward(const SequenceShape& s, const T* dx, T* dpositions) = 0;
  // features[i, :] = [h, t, h - t, h * t] with h = x[i, :] and t = target row r of item i
  // (stride ldt): DIN's attention input, [items x 4*dim].
  virtual void AttentionFeatures(const SequenceShape& s, const T* x, const T* target, int ldt,
                                 T* features) = 0;
  // dx += and dtarget += the gradients through AttentionFeatures.
  virtual void AttentionFeaturesBackward(const SequenceShape& s, const T* x, const T* target,
                                         int ldt, const T* dfeatures, T* dx, T* dtarget,
                                         int lddt) = 0;
  // out[r, :] = sum over r's items i of w[i] * x[i, :], w = weights [items] or, when weights
  // is null, 1 / len_r (the mean; 0 for an empty record).
  virtual void SequenceWeightedSum(const SequenceShape& s, const T* weights, const T* x, T* out,
                                   int ldo) = 0;
  // dweights[i] = <dout[r, :], x[i, :]> (skipped when null); dx[i, :] += w[i] * dout[r, :].
  virtual void SequenceWeightedSumBackward(const SequenceShape& s, const T* weights,
                                           const T* x, const T* dout, int lddo, T* dweights,
                                           T* dx) = 0;
  // scores[i] = softmax of the scores of item i's record, in place (DIN's normalized form).
  virtual void SequenceSoftmax(const SequenceShape& s, T* scores) = 0;
  // dw[i] = w[i] * (dw[i] - sum over the record's items k of w[k] dw[k]), in place.
  virtual void SequenceSoftmaxBackward(const SequenceShape& s, const T* w, T* dw) = 0;
  // Scaled dot-product attention per record and head (see AttentionArgs).
  virtual void SelfAttention(const AttentionArgs<T>& a) = 0;
  // dqkv = d(attention)/dqkv^T dout (overwrites).
  virtual void SelfAttentionBackward(const AttentionArgs<T>& a, const T* dout, T* dqkv) = 0;

  // ---- task heads, over n samples; logits z, labels y and gradients dz are strided.
  // Each writes the prediction, dz = grad_scale * dloss/dz, and *loss_sum = sum of losses
  // (overwrites; one value in backend memory).
  // Sigmoid + binary cross-entropy from logits.
  virtual void BceWithLogits(int n, const T* z, int ldz, const T* y, int ldy, T grad_scale,
                             T* pred, T* dz, int lddz, T* loss_sum) = 0;
  // Identity + squared error.
  virtual void SquaredError(int n, const T* z, int ldz, const T* y, int ldy, T grad_scale,
                            T* pred, T* dz, int lddz, T* loss_sum) = 0;
  // ESMM's CTCVR head: p = sigmoid(za) * sigmoid(zb), cross-entropy against y.
  // dza is accumulated (za also feeds the CTR head), dzb overwritten.
  virtual void ProductBceWithLogits(int n, const T* za, const T* zb, int ldz, const T* y,
                                    int ldy, T grad_scale, T* pred, T* dza, T* dzb,
                                    int lddz, T* loss_sum) = 0;
};

// Builds the backend named by `device`: "cpu" or "cuda:N". `cpu_threads` sets the
// OpenBLAS thread count (process-wide, as OpenBLAS keeps it) for "cpu". Asking for CUDA
// in a build without it, for a device that is absent, or for double on CUDA is an error.
template <typename T>
StatusOr<std::unique_ptr<Backend<T>>> MakeBackend(const std::string& device,
                                                  int cpu_threads = 1);

// Number of CUDA devices visible to this process; 0 in a build without CUDA.
int CudaDeviceCount();

}  // namespace mtps::models
