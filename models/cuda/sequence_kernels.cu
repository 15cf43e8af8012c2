// CUDA kernels of the interaction and sequence ops: one thread per output element (or
// per row where a row is reduced), atomicAdd where gradients of many rows meet in one.
// Sequences are packed (see SequenceShape); grids over positions skip a record's absent ones.
#include "models/cuda/sequence_kernels.h"

#include <glog/logging.h>

#include "models/kernel_math.h"

namespace mtps::models::cuda {
namespace {

constexpr int kThreads = 256;
inline int Blocks(size_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }
inline void Check() {
  cudaError_t err = cudaGetLastError();
  CHECK(err == cudaSuccess) << "kernel launch: " << cudaGetErrorString(err);
}
#define MTPS_LAUNCH(kernel, n, stream, ...)                              \
  do {                                                                   \
    if ((n) > 0) {                                                       \
      kernel<<<Blocks(n), kThreads, 0, stream>>>(__VA_ARGS__);           \
      Check();                                                           \
    }                                                                    \
  } while (0)

constexpr float kLayerNormEpsilon = 1e-5f;

__device__ inline int Length(const SequenceShape& s, int r) { return s.offsets[r + 1] - s.offsets[r]; }
// Index of pair (i, j), i < j, in the row-major order of PairwiseDot's output.
__device__ inline int PairIndex(int fields, int i, int j) {
  return i * fields - i * (i + 1) / 2 + (j - i - 1);
}

__global__ void MultiplyKernel(int rows, int cols, const float* a, int lda, const float* b,
                               int ldb, float* c, int ldc, bool accumulate) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * cols) return;
  int r = i / cols, k = i % cols;
  float v = a[size_t(r) * lda + k] * b[size_t(r) * ldb + k];
  float* o = c + size_t(r) * ldc + k;
  *o = accumulate ? *o + v : v;
}

__global__ void LayerNormKernel(int rows, int cols, const float* x, int ldx, const float* gamma,
                                const float* beta, float* y, int ldy, float* xhat, float* rstd) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* xr = x + size_t(r) * ldx;
  float mean = 0, var = 0;
  for (int c = 0; c < cols; ++c) mean += xr[c];
  mean /= cols;
  for (int c = 0; c < cols; ++c) var += (xr[c] - mean) * (xr[c] - mean);
  var /= cols;
  const float inv = rsqrtf(var + kLayerNormEpsilon);
  rstd[r] = inv;
  float* hr = xhat + size_t(r) * cols;
  float* yr = y + size_t(r) * ldy;
  for (int c = 0; c < cols; ++c) {
    const float h = (xr[c] - mean) * inv;
    hr[c] = h;
    yr[c] = gamma[c] * h + beta[c];
  }
}

__global__ void LayerNormParamGradKernel(int rows, int cols, const float* xhat, const float* dy,
                                         int lddy, float* dgamma, float* dbeta) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float g = 0, b = 0;
  for (int r = 0; r < rows; ++r) {
    const float d = dy[size_t(r) * lddy + c];
    g += d * xhat[size_t(r) * cols + c];
    b += d;
  }
  dgamma[c] = g;
  dbeta[c] = b;
}

__global__ void LayerNormInputGradKernel(int rows, int cols, const float* xhat, const float* rstd,
                                         const float* gamma, const float* dy, int lddy,
                                         float* dx, int lddx) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* hr = xhat + size_t(r) * cols;
  const float* dyr = dy + size_t(r) * lddy;
  float m1 = 0, m2 = 0;
  for (int c = 0; c < cols; ++c) {
    const float g = dyr[c] * gamma[c];
    m1 += g;
    m2 += g * hr[c];
  }
  m1 /= cols;
  m2 /= cols;
  float* dxr = dx + size_t(r) * lddx;
  for (int c = 0; c < cols; ++c) dxr[c] = rstd[r] * (dyr[c] * gamma[c] - m1 - hr[c] * m2);
}

__global__ void PairwiseDotKernel(int rows, int fields, int dim, const float* x, int ldx,
                                  float* out, int ldo) {
  const int pairs = fields * (fields - 1) / 2;
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(rows) * pairs) return;
  int r = t / pairs, k = t % pairs;
  int i = 0;
  while (k >= fields - 1 - i) {
    k -= fields - 1 - i;
    ++i;
  }
  const int j = i + 1 + k;
  const float* xr = x + size_t(r) * ldx;
  float dot = 0;
  for (int c = 0; c < dim; ++c) dot += xr[i * dim + c] * xr[j * dim + c];
  out[size_t(r) * ldo + (t % pairs)] = dot;
}

__global__ void PairwiseDotBackwardKernel(int rows, int fields, int dim, const float* x, int ldx,
                                          const float* dout, int lddo, float* dx, int lddx) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(rows) * fields * dim) return;
  int r = t / (fields * dim), f = (t / dim) % fields, c = t % dim;
  const float* xr = x + size_t(r) * ldx;
  const float* d = dout + size_t(r) * lddo;
  float sum = 0;
  for (int g = 0; g < fields; ++g) {
    if (g == f) continue;
    const int k = f < g ? PairIndex(fields, f, g) : PairIndex(fields, g, f);
    sum += d[k] * xr[g * dim + c];
  }
  dx[size_t(r) * lddx + f * dim + c] += sum;
}

__global__ void FmKernel(int rows, int fields, int dim, const float* x, int ldx, float* out,
                         int ldo) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(rows) * dim) return;
  int r = t / dim, c = t % dim;
  const float* xr = x + size_t(r) * ldx;
  float sum = 0, squares = 0;
  for (int f = 0; f < fields; ++f) {
    const float v = xr[f * dim + c];
    sum += v;
    squares += v * v;
  }
  out[size_t(r) * ldo + c] = 0.5f * (sum * sum - squares);
}

__global__ void FmBackwardKernel(int rows, int fields, int dim, const float* x, int ldx,
                                 const float* dout, int lddo, float* dx, int lddx) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(rows) * dim) return;
  int r = t / dim, c = t % dim;
  const float* xr = x + size_t(r) * ldx;
  float sum = 0;
  for (int f = 0; f < fields; ++f) sum += xr[f * dim + c];
  const float d = dout[size_t(r) * lddo + c];
  for (int f = 0; f < fields; ++f) dx[size_t(r) * lddx + f * dim + c] += d * (sum - xr[f * dim + c]);
}

// Threads over (record, position < max_len, column); position j of record r, when the
// record has it, is packed row offsets[r] + j.
struct SeqIndex {
  int r, j, c, row;
  bool valid;
  __device__ SeqIndex(const SequenceShape& s, size_t t)
      : r(t / (size_t(s.max_len) * s.dim)), j((t / s.dim) % s.max_len), c(t % s.dim) {
    valid = j < Length(s, r);
    row = s.offsets[r] + j;
  }
};

__global__ void GatherSequenceKernel(SequenceShape s, const int32_t* rows, const float* table,
                                     float* out) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.items) * s.dim) return;
  out[t] = table[size_t(rows[t / s.dim]) * s.dim + t % s.dim];
}

__global__ void ScatterSequenceKernel(SequenceShape s, const int32_t* rows, const float* dout,
                                      float* table_grad) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.items) * s.dim) return;
  atomicAdd(&table_grad[size_t(rows[t / s.dim]) * s.dim + t % s.dim], dout[t]);
}

__global__ void AddPositionsKernel(SequenceShape s, const float* positions, float* x) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len * s.dim) return;
  SeqIndex i(s, t);
  if (!i.valid) return;
  x[size_t(i.row) * s.dim + i.c] += positions[size_t(Length(s, i.r) - 1 - i.j) * s.dim + i.c];
}

__global__ void AddPositionsBackwardKernel(SequenceShape s, const float* dx, float* dpositions) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len * s.dim) return;
  SeqIndex i(s, t);
  if (!i.valid) return;
  atomicAdd(&dpositions[size_t(Length(s, i.r) - 1 - i.j) * s.dim + i.c],
            dx[size_t(i.row) * s.dim + i.c]);
}

__global__ void AttentionFeaturesKernel(SequenceShape s, const float* x, const float* target,
                                        int ldt, float* features) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len * s.dim) return;
  SeqIndex i(s, t);
  if (!i.valid) return;
  const float h = x[size_t(i.row) * s.dim + i.c], tv = target[size_t(i.r) * ldt + i.c];
  float* f = features + size_t(i.row) * 4 * s.dim;
  f[i.c] = h;
  f[s.dim + i.c] = tv;
  f[2 * s.dim + i.c] = h - tv;
  f[3 * s.dim + i.c] = h * tv;
}

__global__ void AttentionFeaturesItemGradKernel(SequenceShape s, const float* target, int ldt,
                                                const float* dfeatures, float* dx) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len * s.dim) return;
  SeqIndex i(s, t);
  if (!i.valid) return;
  const float* f = dfeatures + size_t(i.row) * 4 * s.dim;
  dx[size_t(i.row) * s.dim + i.c] +=
      f[i.c] + f[2 * s.dim + i.c] + f[3 * s.dim + i.c] * target[size_t(i.r) * ldt + i.c];
}

__global__ void AttentionFeaturesTargetGradKernel(SequenceShape s, const float* x,
                                                  const float* dfeatures, float* dtarget,
                                                  int lddt) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.dim) return;
  int r = t / s.dim, c = t % s.dim;
  const int len = Length(s, r);
  float sum = 0;
  for (int j = 0; j < len; ++j) {
    const size_t row = size_t(s.offsets[r]) + j;
    const float* f = dfeatures + row * 4 * s.dim;
    sum += f[s.dim + c] - f[2 * s.dim + c] + f[3 * s.dim + c] * x[row * s.dim + c];
  }
  dtarget[size_t(r) * lddt + c] += sum;
}

__global__ void WeightedSumKernel(SequenceShape s, const float* weights, const float* x,
                                  float* out, int ldo) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.dim) return;
  int r = t / s.dim, c = t % s.dim;
  const int len = Length(s, r);
  float sum = 0;
  for (int j = 0; j < len; ++j) {
    const size_t row = size_t(s.offsets[r]) + j;
    const float w = weights != nullptr ? weights[row] : 1.0f / len;
    sum += w * x[row * s.dim + c];
  }
  out[size_t(r) * ldo + c] = sum;
}

__global__ void WeightedSumWeightGradKernel(SequenceShape s, const float* x, const float* dout,
                                            int lddo, float* dweights) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len) return;
  int r = t / s.max_len, j = t % s.max_len;
  if (j >= Length(s, r)) return;
  const size_t row = size_t(s.offsets[r]) + j;
  float dot = 0;
  for (int c = 0; c < s.dim; ++c) dot += dout[size_t(r) * lddo + c] * x[row * s.dim + c];
  dweights[row] = dot;
}

__global__ void WeightedSumItemGradKernel(SequenceShape s, const float* weights, const float* dout,
                                          int lddo, float* dx) {
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * s.max_len * s.dim) return;
  SeqIndex i(s, t);
  if (!i.valid) return;
  const float w = weights != nullptr ? weights[i.row] : 1.0f / Length(s, i.r);
  dx[size_t(i.row) * s.dim + i.c] += w * dout[size_t(i.r) * lddo + i.c];
}

// One thread per record: a record has at most max_length items.
__global__ void SequenceSoftmaxKernel(SequenceShape s, float* scores) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= s.batch) return;
  float* w = scores + s.offsets[r];
  const int len = Length(s, r);
  if (len == 0) return;
  float m = w[0];
  for (int j = 1; j < len; ++j) m = fmaxf(m, w[j]);
  float sum = 0;
  for (int j = 0; j < len; ++j) {
    w[j] = Exp(w[j] - m);
    sum += w[j];
  }
  for (int j = 0; j < len; ++j) w[j] /= sum;
}

__global__ void SequenceSoftmaxBackwardKernel(SequenceShape s, const float* w, float* dw) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= s.batch) return;
  const int begin = s.offsets[r], len = Length(s, r);
  float dot = 0;
  for (int j = 0; j < len; ++j) dot += w[begin + j] * dw[begin + j];
  for (int j = 0; j < len; ++j) dw[begin + j] = w[begin + j] * (dw[begin + j] - dot);
}

// One thread per (record, head, query position).
__global__ void SelfAttentionKernel(AttentionArgs<float> a) {
  const SequenceShape& s = a.shape;
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * a.heads * s.max_len) return;
  const int L = s.max_len, d = s.dim, dh = d / a.heads, ld = 3 * d;
  const int i = t % L, h = (t / L) % a.heads, r = t / (size_t(L) * a.heads);
  const int len = Length(s, r);
  const float scale = rsqrtf(float(dh));
  if (i >= len) return;
  const float* base = a.qkv + size_t(s.offsets[r]) * ld;
  float* p = a.probs + ((size_t(r) * a.heads + h) * L + i) * L;
  float* o = a.out + (size_t(s.offsets[r]) + i) * d + h * dh;
  for (int c = 0; c < dh; ++c) o[c] = 0.0f;
  const float* q = base + size_t(i) * ld + h * dh;
  float m = -INFINITY;
  for (int j = 0; j < len; ++j) {
    const float* k = base + size_t(j) * ld + d + h * dh;
    float dot = 0;
    for (int c = 0; c < dh; ++c) dot += q[c] * k[c];
    p[j] = dot * scale;
    m = fmaxf(m, p[j]);
  }
  float sum = 0;
  for (int j = 0; j < len; ++j) {
    p[j] = Exp(p[j] - m);
    sum += p[j];
  }
  for (int j = 0; j < len; ++j) {
    p[j] /= sum;
    const float* v = base + size_t(j) * ld + 2 * d + h * dh;
    for (int c = 0; c < dh; ++c) o[c] += p[j] * v[c];
  }
}

__global__ void SelfAttentionBackwardKernel(AttentionArgs<float> a, const float* dout,
                                            float* dqkv) {
  const SequenceShape& s = a.shape;
  size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (t >= size_t(s.batch) * a.heads * s.max_len) return;
  const int L = s.max_len, d = s.dim, dh = d / a.heads, ld = 3 * d;
  const int i = t % L, h = (t / L) % a.heads, r = t / (size_t(L) * a.heads);
  const int len = Length(s, r);
  if (i >= len) return;
  const float scale = rsqrtf(float(dh));
  const float* base = a.qkv + size_t(s.offsets[r]) * ld;
  float* dbase = dqkv + size_t(s.offsets[r]) * ld;
  const float* p = a.probs + ((size_t(r) * a.heads + h) * L + i) * L;
  const float* g = dout + (size_t(s.offsets[r]) + i) * d + h * dh;
  const float* q = base + size_t(i) * ld + h * dh;
  float* dq = dbase + size_t(i) * ld + h * dh;
  float weighted = 0;
  for (int j = 0; j < len; ++j) {
    const float* v = base + size_t(j) * ld + 2 * d + h * dh;
    float* dv = dbase + size_t(j) * ld + 2 * d + h * dh;
    float dp = 0;
    for (int c = 0; c < dh; ++c) {
      dp += g[c] * v[c];
      atomicAdd(&dv[c], p[j] * g[c]);
    }
    weighted += p[j] * dp;
  }
  for (int j = 0; j < len; ++j) {
    const float* v = base + size_t(j) * ld + 2 * d + h * dh;
    float dp = 0;
    for (int c = 0; c < dh; ++c) dp += g[c] * v[c];
    const float ds = p[j] * (dp - weighted) * scale;
    const float* k = base + size_t(j) * ld + d + h * dh;
    float* dk = dbase + size_t(j) * ld + d + h * dh;
    for (int c = 0; c < dh; ++c) {
      dq[c] += ds * k[c];
      atomicAdd(&dk[c], ds * q[c]);
    }
  }
}

// Threads of a (record, position, column) grid; of an (item, column) grid.
size_t Cells(const SequenceShape& s) { return size_t(s.batch) * s.max_len * s.dim; }
size_t ItemCells(const SequenceShape& s) { return size_t(s.items) * s.dim; }

}  // namespace

void LaunchMultiply(int rows, int cols, const float* a, int lda, const float* b, int ldb, float* c,
                    int ldc, bool accumulate, cudaStream_t stream) {
  MTPS_LAUNCH(MultiplyKernel, size_t(rows) * cols, stream, rows, cols, a, lda, b, ldb, c, ldc,
              accumulate);
}
void LaunchLayerNorm(int rows, int cols, const float* x, int ldx, const float* gamma,
                     const float* beta, float* y, int ldy, float* xhat, float* rstd,
                     cudaStream_t stream) {
  MTPS_LAUNCH(LayerNormKernel, size_t(rows), stream, rows, cols, x, ldx, gamma, beta, y, ldy,
              xhat, rstd);
}
void LaunchLayerNormBackward(int rows, int cols, const float* xhat, const float* rstd,
                             const float* gamma, const float* dy, int lddy, float* dx, int lddx,
                             float* dgamma, float* dbeta, cudaStream_t stream) {
  // Parameter gradients first: dx may overwrite dy.
  MTPS_LAUNCH(LayerNormParamGradKernel, size_t(cols), stream, rows, cols, xhat, dy, lddy, dgamma,
              dbeta);
  MTPS_LAUNCH(LayerNormInputGradKernel, size_t(rows), stream, rows, cols, xhat, rstd, gamma, dy,
              lddy, dx, lddx);
}
void LaunchPairwiseDot(int rows, int fields, int dim, const float* x, int ldx, float* out, int ldo,
                       cudaStream_t stream) {
  MTPS_LAUNCH(PairwiseDotKernel, size_t(rows) * fields * (fields - 1) / 2, stream, rows, fields,
              dim, x, ldx, out, ldo);
}
void LaunchPairwiseDotBackward(int rows, int fields, int dim, const float* x, int ldx,
                               const float* dout, int lddo, float* dx, int lddx,
                               cudaStream_t stream) {
  MTPS_LAUNCH(PairwiseDotBackwardKernel, size_t(rows) * fields * dim, stream, rows, fields, dim, x,
              ldx, dout, lddo, dx, lddx);
}
void LaunchFmInteraction(int rows, int fields, int dim, const float* x, int ldx, float* out,
                         int ldo, cudaStream_t stream) {
  MTPS_LAUNCH(FmKernel, size_t(rows) * dim, stream, rows, fields, dim, x, ldx, out, ldo);
}
void LaunchFmInteractionBackward(int rows, int fields, int dim, const float* x, int ldx,
                                 const float* dout, int lddo, float* dx, int lddx,
                                 cudaStream_t stream) {
  MTPS_LAUNCH(FmBackwardKernel, size_t(rows) * dim, stream, rows, fields, dim, x, ldx, dout, lddo,
              dx, lddx);
}
void LaunchGatherSequence(const SequenceShape& s, const int32_t* rows, const float* table,
                          float* out, cudaStream_t stream) {
  MTPS_LAUNCH(GatherSequenceKernel, ItemCells(s), stream, s, rows, table, out);
}
void LaunchScatterSequence(const SequenceShape& s, const int32_t* rows, const float* dout,
                           float* table_grad, cudaStream_t stream) {
  MTPS_LAUNCH(ScatterSequenceKernel, ItemCells(s), stream, s, rows, dout, table_grad);
}
void LaunchAddPositions(const SequenceShape& s, const float* positions, float* x,
                        cudaStream_t stream) {
  MTPS_LAUNCH(AddPositionsKernel, Cells(s), stream, s, positions, x);
}
void LaunchAddPositionsBackward(const SequenceShape& s, const float* dx, float* dpositions,
                                cudaStream_t stream) {
  MTPS_LAUNCH(AddPositionsBackwardKernel, Cells(s), stream, s, dx, dpositions);
}
void LaunchAttentionFeatures(const SequenceShape& s, const float* x, const float* target, int ldt,
                             float* features, cudaStream_t stream) {
  MTPS_LAUNCH(AttentionFeaturesKernel, Cells(s), stream, s, x, target, ldt, features);
}
void LaunchAttentionFeaturesBackward(const SequenceShape& s, const float* x, const float* target,
                                     int ldt, const float* dfeatures, float* dx, float* dtarget,
                                     int lddt, cudaStream_t stream) {
  MTPS_LAUNCH(AttentionFeaturesItemGradKernel, Cells(s), stream, s, target, ldt, dfeatures, dx);
  MTPS_LAUNCH(AttentionFeaturesTargetGradKernel, size_t(s.batch) * s.dim, stream, s, x, dfeatures,
              dtarget, lddt);
}
void LaunchSequenceWeightedSum(const SequenceShape& s, const float* weights, const float* x,
                               float* out, int ldo, cudaStream_t stream) {
  MTPS_LAUNCH(WeightedSumKernel, size_t(s.batch) * s.dim, stream, s, weights, x, out, ldo);
}
void LaunchSequenceWeightedSumBackward(const SequenceShape& s, const float* weights,
                                       const float* x, const float* dout, int lddo,
                                       float* dweights, float* dx, cudaStream_t stream) {
  if (dweights != nullptr) {
    MTPS_LAUNCH(WeightedSumWeightGradKernel, size_t(s.batch) * s.max_len, stream, s, x, dout, lddo,
                dweights);
  }
  MTPS_LAUNCH(WeightedSumItemGradKernel, Cells(s), stream, s, weights, dout, lddo, dx);
}
void LaunchSequenceSoftmax(const SequenceShape& s, float* scores, cudaStream_t stream) {
  MTPS_LAUNCH(SequenceSoftmaxKernel, size_t(s.batch), stream, s, scores);
}
void LaunchSequenceSoftmaxBackward(const SequenceShape& s, const float* w, float* dw,
                                   cudaStream_t stream) {
  MTPS_LAUNCH(SequenceSoftmaxBackwardKernel, size_t(s.batch), stream, s, w, dw);
}
void LaunchSelfAttention(const AttentionArgs<float>& a, cudaStream_t stream) {
  MTPS_LAUNCH(SelfAttentionKernel, size_t(a.shape.batch) * a.heads * a.shape.max_len, stream, a);
}
void LaunchSelfAttentionBackward(const AttentionArgs<float>& a, const float* dout, float* dqkv,
                                 cudaStream_t stream) {
  const size_t n = size_t(a.shape.items) * 3 * a.shape.dim;
  if (n == 0) return;
  CHECK(cudaMemsetAsync(dqkv, 0, n * sizeof(float), stream) == cudaSuccess);
  MTPS_LAUNCH(SelfAttentionBackwardKernel, size_t(a.shape.batch) * a.heads * a.shape.max_len,
              stream, a, dout, dqkv);
}

}  // namespace mtps::models::cuda
