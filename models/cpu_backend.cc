// CPU implementation of Backend<T> for float and double: cblas for products, simple
// loops over contiguous rows (vectorized by the compiler) for the rest.
#include "models/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "models/blas_core.h"
#include "models/cpu_sequence_ops.h"
#include "models/kernel_math.h"

namespace mtps::models {
namespace {

template <typename T>
class CpuBackend final : public Backend<T> {
 public:
  explicit CpuBackend(int threads) {
    UseTheBestBlasKernels();  // before this process's first BLAS call
    openblas_set_num_threads(std::max(threads, 1));
  }

  std::string device() const override { return "cpu"; }
  bool is_host() const override { return true; }

  void* AllocateBytes(size_t bytes) override {
    // 64-byte alignment keeps rows on cache lines and lets loops use full vectors.
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    std::memset(p, 0, rounded == 0 ? 64 : rounded);
    return p;
  }
  void FreeBytes(void* p) override { std::free(p); }
  void CopyToDevice(const void* host, void* dev, size_t bytes) override {
    if (host != dev && bytes > 0) std::memcpy(dev, host, bytes);
  }
  void CopyToHost(const void* dev, void* host, size_t bytes) override {
    if (host != dev && bytes > 0) std::memcpy(host, dev, bytes);
  }
  void Synchronize() override {}
  void Fill(T* x, size_t n, T value) override { std::fill(x, x + n, value); }

  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
            const T* b, int ldb, T beta, T* c, int ldc) override {
    if (m == 0 || n == 0) return;
    auto ta = trans_a ? CblasTrans : CblasNoTrans;
    auto tb = trans_b ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  }

  void BiasActivation(int rows, int cols, const T* bias, Activation act, T* y,
                      int ldy) override {
    for (int r = 0; r < rows; ++r) {
      T* __restrict row = y + static_cast<size_t>(r) * ldy;
      if (act == Activation::kRelu) {
        for (int c = 0; c < cols; ++c) row[c] = std::max(row[c] + bias[c], T(0));
      } else {
        for (int c = 0; c < cols; ++c) row[c] += bias[c];
      }
    }
  }

  void ReluBackward(int rows, int cols, const T* y, int ldy, T* dy, int lddy) override {
    for (int r = 0; r < rows; ++r) {
      const T* __restrict yr = y + static_cast<size_t>(r) * ldy;
      T* __restrict dr = dy + static_cast<size_t>(r) * lddy;
      for (int c = 0; c < cols; ++c) dr[c] = yr[c] > T(0) ? dr[c] : T(0);
    }
  }

  void ColumnSum(int rows, int cols, const T* x, int ldx, T* out) override {
    std::fill(out, out + cols, T(0));
    for (int r = 0; r < rows; ++r) {
      const T* __restrict xr = x + static_cast<size_t>(r) * ldx;
      for (int c = 0; c < cols; ++c) out[c] += xr[c];
    }
  }

  void CopyBlock(int rows, int cols, const T* src, int lds, T* dst, int ldd,
                 bool accumulate) override {
    for (int r = 0; r < rows; ++r) {
      const T* __restrict s = src + static_cast<size_t>(r) * lds;
      T* __restrict d = dst + static_cast<size_t>(r) * ldd;
      if (accumulate) {
        for (int c = 0; c < cols; ++c) d[c] += s[c];
      } else {
        std::memcpy(d, s, sizeof(T) * cols);
      }
    }
  }

  void Dropout(int rows, int cols, float rate, uint64_t seed, T* x, int ldx) override {
    const T scale = T(1) / (T(1) - T(rate));
    for (int r = 0; r < rows; ++r) {
      T* row = x + static_cast<size_t>(r) * ldx;
      uint64_t base = static_cast<uint64_t>(r) * cols;
      for (int c = 0; c < cols; ++c) {
        row[c] = HashUniform(seed, base + c) >= rate ? row[c] * scale : T(0);
      }
    }
  }

  void RowSoftmax(int rows, int cols, T* x, int ldx) override {
    for (int r = 0; r < rows; ++r) {
      T* row = x + static_cast<size_t>(r) * ldx;
      T m = *std::max_element(row, row + cols);
      T sum = 0;
      for (int c = 0; c < cols; ++c) {
        row[c] = Exp(row[c] - m);
        sum += row[c];
      }
      T inv = T(1) / sum;
      for (int c = 0; c < cols; ++c) row[c] *= inv;
    }
  }

  void RowSoftmaxBackward(int rows, int cols, const T* y, int ldy, const T* dy, int lddy,
                          T* dx, int lddx) override {
    for (int r = 0; r < rows; ++r) {
      const T* yr = y + static_cast<size_t>(r) * ldy;
      const T* dyr = dy + static_cast<size_t>(r) * lddy;
      T* dxr = dx + static_cast<size_t>(r) * lddx;
      T dot = 0;
      for (int c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
      for (int c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
    }
  }

  void MixExperts(int rows, int width, const ExpertRanges& ranges, const T* gate, int ldg,
                  const T* experts, int lde, T* out, int ldo) override {
    const int n = ranges.total();
    for (int r = 0; r < rows; ++r) {
      const T* g = gate + static_cast<size_t>(r) * ldg;
      const T* e = experts + static_cast<size_t>(r) * lde;
      T* __restrict o = out + static_cast<size_t>(r) * ldo;
      std::fill(o, o + width, T(0));
      for (int j = 0; j < n; ++j) {
        const T* __restrict ej = e + static_cast<size_t>(ranges.expert(j)) * width;
        const T gj = g[j];
        for (int h = 0; h < width; ++h) o[h] += gj * ej[h];
      }
    }
  }

  void MixExpertsBackward(int rows, int width, const ExpertRanges& ranges, const T* gate,
                          int ldg, const T* experts, int lde, const T* dout, int lddo,
                          T* dgate, int lddg, T* dexperts, int ldde) override {
    const int n = ranges.total();
    for (int r = 0; r < rows; ++r) {
      const T* g = gate + static_cast<size_t>(r) * ldg;
      const T* e = experts + static_cast<size_t>(r) * lde;
      const T* __restrict d = dout + static_cast<size_t>(r) * lddo;
      T* dg = dgate + static_cast<size_t>(r) * lddg;
      T* de = dexperts + static_cast<size_t>(r) * ldde;
      for (int j = 0; j < n; ++j) {
        const size_t col = static_cast<size_t>(ranges.expert(j)) * width;
        const T* __restrict ej = e + col;
        T* __restrict dej = de + col;
        const T gj = g[j];
        T dot = 0;
        for (int h = 0; h < width; ++h) {
          dot += d[h] * ej[h];
          dej[h] += gj * d[h];
        }
        dg[j] = dot;
      }
    }
  }

  void PoolForward(const PoolingArgs<T>& a) override {
    for (int r = 0; r < a.batch; ++r) {
      T* __restrict o = a.out + static_cast<size_t>(r) * a.ld;
      std::fill(o, o + a.dim, T(0));
      const int begin = a.offsets[r], end = a.offsets[r + 1];
      for (int i = begin; i < end; ++i) {
        const T* __restrict row = a.table + static_cast<size_t>(a.rows[i]) * a.dim;
        for (int c = 0; c < a.dim; ++c) o[c] += row[c];
      }
      if (a.mean && end > begin) {
        const T inv = T(1) / T(end - begin);
        for (int c = 0; c < a.dim; ++c) o[c] *= inv;
      }
    }
  }

  void PoolBackward(const PoolingArgs<T>& a, T* table_grad) override {
    for (int r = 0; r < a.batch; ++r) {
      const T* __restrict d = a.out + static_cast<size_t>(r) * a.ld;
      const int begin = a.offsets[r], end = a.offsets[r + 1];
      const T scale = a.mean && end > begin ? T(1) / T(end - begin) : T(1);
      for (int i = begin; i < end; ++i) {
        T* __restrict g = table_grad + static_cast<size_t>(a.rows[i]) * a.dim;
        for (int c = 0; c < a.dim; ++c) g[c] += scale * d[c];
      }
    }
  }

  void Multiply(int rows, int cols, const T* a, int lda, const T* b, int ldb, T* c, int ldc,
                bool accumulate) override {
    cpu::Multiply(rows, cols, a, lda, b, ldb, c, ldc, accumulate);
  }
  void LayerNorm(int rows, int cols, const T* x, int ldx, const T* gamma, const T* beta, T* y,
                 int ldy, T* xhat, T* rstd) override {
    cpu::LayerNorm(rows, cols, x, ldx, gamma, beta, y, ldy, xhat, rstd);
  }
  void LayerNormBackward(int rows, int cols, const T* xhat, const T* rstd, const T* gamma,
                         const T* dy, int lddy, T* dx, int lddx, T* dgamma, T* dbeta) override {
    cpu::LayerNormBackward(rows, cols, xhat, rstd, gamma, dy, lddy, dx, lddx, dgamma, dbeta);
  }
  void PairwiseDot(int rows, int fields, int dim, const T* x, int ldx, T* out,
                   int ldo) override {
    cpu::PairwiseDot(rows, fields, dim, x, ldx, out, ldo);
  }
  void PairwiseDotBackward(int rows, int fields, int dim, const T* x, int ldx, const T* dout,
                           int lddo, T* dx, int lddx) override {
    cpu::PairwiseDotBackward(rows, fields, dim, x, ldx, dout, lddo, dx, lddx);
  }
  void FmInteraction(int rows, int fields, int dim, const T* x, int ldx, T* out,
                     int ldo) override {
    cpu::FmInteraction(rows, fields, dim, x, ldx, out, ldo);
  }
  void FmInteractionBackward(int rows, int fields, int dim, const T* x, int ldx, const T* dout,
                             int lddo, T* dx, int lddx) override {
    cpu::FmInteractionBackward(rows, fields, dim, x, ldx, dout, lddo, dx, lddx);
  }
  void GatherSequence(const SequenceShape& s, const int32_t* rows, const T* table,
                      T* out) override {
    cpu::GatherSequence(s, rows, table, out);
  }
  void ScatterSequence(const SequenceShape& s, const int32_t* rows, const T* dout,
                       T* table_grad) override {
    cpu::ScatterSequence(s, rows, dout, table_grad);
  }
  void AddPositions(const SequenceShape& s, const T* positions, T* x) override {
    cpu::AddPositions(s, positions, x);
  }
  void AddPositionsBackward(const SequenceShape& s, const T* dx, T* dpositions) override {
    cpu::AddPositionsBackward(s, dx, dpositions);
  }
  void AttentionFeatures(const SequenceShape& s, const T* x, const T* target, int ldt,
                         T* features) override {
    cpu::AttentionFeatures(s, x, target, ldt, features);
  }
  void AttentionFeaturesBackward(const SequenceShape& s, const T* x, const T* target, int ldt,
                                 const T* dfeatures, T* dx, T* dtarget, int lddt) override {
    cpu::AttentionFeaturesBackward(s, x, target, ldt, dfeatures, dx, dtarget, lddt);
  }
  void SequenceWeightedSum(const SequenceShape& s, const T* weights, const T* x, T* out,
                           int ldo) override {
    cpu::SequenceWeightedSum(s, weights, x, out, ldo);
  }
  void SequenceWeightedSumBackward(const SequenceShape& s, const T* weights, const T* x,
                                   const T* dout, int lddo, T* dweights, T* dx) override {
    cpu::SequenceWeightedSumBackward(s, weights, x, dout, lddo, dweights, dx);
  }
  void SequenceSoftmax(const SequenceShape& s, T* scores) override {
    cpu::SequenceSoftmax(s, scores);
  }
  void SequenceSoftmaxBackward(const SequenceShape& s, const T* w, T* dw) override {
    cpu::SequenceSoftmaxBackward(s, w, dw);
  }
  void SelfAttention(const AttentionArgs<T>& a) override { cpu::SelfAttention(a); }
  void SelfAttentionBackward(const AttentionArgs<T>& a, const T* dout, T* dqkv) override {
    cpu::SelfAttentionBackward(a, dout, dqkv);
  }

  void BceWithLogits(int n, const T* z, int ldz, const T* y, int ldy, T grad_scale, T* pred,
                     T* dz, int lddz, T* loss_sum) override {
    T total = 0;
    for (int i = 0; i < n; ++i) {
      T loss, p, g;
      BceFromLogit(z[static_cast<size_t>(i) * ldz], y[static_cast<size_t>(i) * ldy], &loss,
                   &p, &g);
      total += loss;
      pred[i] = p;
      dz[static_cast<size_t>(i) * lddz] = grad_scale * g;
    }
    *loss_sum = total;
  }

  void SquaredError(int n, const T* z, int ldz, const T* y, int ldy, T grad_scale, T* pred,
                    T* dz, int lddz, T* loss_sum) override {
    T total = 0;
    for (int i = 0; i < n; ++i) {
      T zi = z[static_cast<size_t>(i) * ldz];
      T diff = zi - y[static_cast<size_t>(i) * ldy];
      total += diff * diff;
      pred[i] = zi;
      dz[static_cast<size_t>(i) * lddz] = grad_scale * T(2) * diff;
    }
    *loss_sum = total;
  }

  void ProductBceWithLogits(int n, const T* za, const T* zb, int ldz, const T* y, int ldy,
                            T grad_scale, T* pred, T* dza, T* dzb, int lddz,
                            T* loss_sum) override {
    T total = 0;
    for (int i = 0; i < n; ++i) {
      T loss, p, ga, gb;
      const size_t iz = static_cast<size_t>(i) * ldz, id = static_cast<size_t>(i) * lddz;
      ProductBceFromLogits(za[iz], zb[iz], y[static_cast<size_t>(i) * ldy], &loss, &p, &ga,
                           &gb);
      total += loss;
      pred[i] = p;
      dza[id] += grad_scale * ga;
      dzb[id] = grad_scale * gb;
    }
    *loss_sum = total;
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Backend<T>> MakeCpuBackend(int threads) {
  return std::make_unique<CpuBackend<T>>(threads);
}

template std::unique_ptr<Backend<float>> MakeCpuBackend<float>(int);
template std::unique_ptr<Backend<double>> MakeCpuBackend<double>(int);

}  // namespace mtps::models
