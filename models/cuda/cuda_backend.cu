// CUDA implementation of Backend<float>: cuBLAS sgemm (row-major through the transpose
// identity) and one small kernel per element-wise, gate, pooling and loss operation, all
// on one stream. Scalar math comes from models/kernel_math.h, shared with the CPU.
#include "models/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <glog/logging.h>

#include "models/cuda/sequence_kernels.h"
#include "models/kernel_math.h"

namespace mtps::models {
namespace {

#define MTPS_CUDA_CHECK(expr)                                                       \
  do {                                                                             \
    cudaError_t err_ = (expr);                                                     \
    CHECK(err_ == cudaSuccess) << #expr << ": " << cudaGetErrorString(err_);       \
  } while (0)
#define MTPS_CUBLAS_CHECK(expr)                                            \
  do {                                                                    \
    cublasStatus_t st_ = (expr);                                          \
    CHECK(st_ == CUBLAS_STATUS_SUCCESS) << #expr << ": cuBLAS status " << st_; \
  } while (0)

constexpr int kThreads = 256;
inline int Blocks(size_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void FillKernel(float* x, size_t n, float value) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i < n) x[i] = value;
}

__global__ void BiasActivationKernel(int rows, int cols, const float* bias, bool relu, float* y,
                                     int ldy) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * cols) return;
  int r = i / cols, c = i % cols;
  float v = y[size_t(r) * ldy + c] + bias[c];
  y[size_t(r) * ldy + c] = relu ? fmaxf(v, 0.0f) : v;
}

__global__ void ReluBackwardKernel(int rows, int cols, const float* y, int ldy, float* dy,
                                   int lddy) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * cols) return;
  int r = i / cols, c = i % cols;
  if (!(y[size_t(r) * ldy + c] > 0.0f)) dy[size_t(r) * lddy + c] = 0.0f;
}

// One thread per column; adjacent threads read adjacent addresses of each row.
__global__ void ColumnSumKernel(int rows, int cols, const float* x, int ldx, float* out) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0;
  for (int r = 0; r < rows; ++r) sum += x[size_t(r) * ldx + c];
  out[c] = sum;
}

__global__ void CopyBlockKernel(int rows, int cols, const float* src, int lds, float* dst,
                                int ldd, bool accumulate) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * cols) return;
  int r = i / cols, c = i % cols;
  float v = src[size_t(r) * lds + c];
  float* d = dst + size_t(r) * ldd + c;
  *d = accumulate ? *d + v : v;
}

__global__ void DropoutKernel(int rows, int cols, float rate, uint64_t seed, float* x, int ldx) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * cols) return;
  int r = i / cols, c = i % cols;
  float* v = x + size_t(r) * ldx + c;
  const float scale = 1.0f / (1.0f - rate);  // as the CPU computes it, bit for bit
  *v = HashUniform(seed, uint64_t(r) * cols + c) >= rate ? *v * scale : 0.0f;
}

// One thread per row: gates have a handful of experts.
__global__ void RowSoftmaxKernel(int rows, int cols, float* x, int ldx) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float* row = x + size_t(r) * ldx;
  float m = row[0];
  for (int c = 1; c < cols; ++c) m = fmaxf(m, row[c]);
  float sum = 0;
  for (int c = 0; c < cols; ++c) {
    row[c] = Exp(row[c] - m);
    sum += row[c];
  }
  for (int c = 0; c < cols; ++c) row[c] /= sum;
}

__global__ void RowSoftmaxBackwardKernel(int rows, int cols, const float* y, int ldy,
                                         const float* dy, int lddy, float* dx, int lddx) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* yr = y + size_t(r) * ldy;
  const float* dyr = dy + size_t(r) * lddy;
  float* dxr = dx + size_t(r) * lddx;
  float dot = 0;
  for (int c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
  for (int c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
}

__global__ void MixExpertsKernel(int rows, int width, ExpertRanges ranges, const float* gate,
                                 int ldg, const float* experts, int lde, float* out, int ldo) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * width) return;
  int r = i / width, h = i % width;
  const float* g = gate + size_t(r) * ldg;
  const float* e = experts + size_t(r) * lde + h;
  float sum = 0;
  for (int j = 0; j < ranges.total(); ++j) sum += g[j] * e[size_t(ranges.expert(j)) * width];
  out[size_t(r) * ldo + h] = sum;
}

// One thread per (row, mixed expert): each expert appears once in the ranges, so the
// dexperts entries it adds to are its own.
__global__ void MixExpertsBackwardKernel(int rows, int width, ExpertRanges ranges,
                                         const float* gate, int ldg, const float* experts,
                                         int lde, const float* dout, int lddo, float* dgate,
                                         int lddg, float* dexperts, int ldde) {
  const int n = ranges.total();
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(rows) * n) return;
  int r = i / n, j = i % n;
  size_t col = size_t(ranges.expert(j)) * width;
  const float* e = experts + size_t(r) * lde + col;
  float* de = dexperts + size_t(r) * ldde + col;
  const float* d = dout + size_t(r) * lddo;
  const float g = gate[size_t(r) * ldg + j];
  float dot = 0;
  for (int h = 0; h < width; ++h) {
    dot += d[h] * e[h];
    de[h] += g * d[h];
  }
  dgate[size_t(r) * lddg + j] = dot;
}

__global__ void PoolForwardKernel(PoolingArgs<float> a) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(a.batch) * a.dim) return;
  int r = i / a.dim, c = i % a.dim;
  const int begin = a.offsets[r], end = a.offsets[r + 1];
  float sum = 0;
  for (int k = begin; k < end; ++k) sum += a.table[size_t(a.rows[k]) * a.dim + c];
  if (a.mean && end > begin) sum /= float(end - begin);
  a.out[size_t(r) * a.ld + c] = sum;
}

// Duplicate rows across (and within) bags collide: atomicAdd is the scatter-add.
__global__ void PoolBackwardKernel(PoolingArgs<float> a, float* table_grad) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(a.batch) * a.dim) return;
  int r = i / a.dim, c = i % a.dim;
  const int begin = a.offsets[r], end = a.offsets[r + 1];
  float d = a.out[size_t(r) * a.ld + c];
  if (a.mean && end > begin) d /= float(end - begin);
  for (int k = begin; k < end; ++k) atomicAdd(&table_grad[size_t(a.rows[k]) * a.dim + c], d);
}

// Block-wide sum of one value per thread, added to *total by thread 0.
__device__ void BlockSumInto(float v, float* total) {
  __shared__ float partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(total, partial[0]);
}

__global__ void BceKernel(int n, const float* z, int ldz, const float* y, int ldy, float scale,
                          float* pred, float* dz, int lddz, float* loss_sum) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float loss = 0;
  if (i < n) {
    float p, g;
    BceFromLogit(z[size_t(i) * ldz], y[size_t(i) * ldy], &loss, &p, &g);
    pred[i] = p;
    dz[size_t(i) * lddz] = scale * g;
  }
  BlockSumInto(loss, loss_sum);
}

__global__ void SquaredErrorKernel(int n, const float* z, int ldz, const float* y, int ldy,
                                   float scale, float* pred, float* dz, int lddz,
                                   float* loss_sum) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float loss = 0;
  if (i < n) {
    float zi = z[size_t(i) * ldz], diff = zi - y[size_t(i) * ldy];
    loss = diff * diff;
    pred[i] = zi;
    dz[size_t(i) * lddz] = scale * 2.0f * diff;
  }
  BlockSumInto(loss, loss_sum);
}

__global__ void ProductBceKernel(int n, const float* za, const float* zb, int ldz, const float* y,
                                 int ldy, float scale, float* pred, float* dza, float* dzb,
                                 int lddz, float* loss_sum) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float loss = 0;
  if (i < n) {
    float p, ga, gb;
    ProductBceFromLogits(za[size_t(i) * ldz], zb[size_t(i) * ldz], y[size_t(i) * ldy], &loss, &p,
                         &ga, &gb);
    pred[i] = p;
    dza[size_t(i) * lddz] += scale * ga;
    dzb[size_t(i) * lddz] = scale * gb;
  }
  BlockSumInto(loss, loss_sum);
}

class CudaBackend final : public Backend<float> {
 public:
  explicit CudaBackend(int ordinal) : ordinal_(ordinal) {
    MTPS_CUDA_CHECK(cudaSetDevice(ordinal));
    MTPS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    MTPS_CUBLAS_CHECK(cublasCreate(&blas_));
    MTPS_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    // Bitwise-reproducible products: no TF32, so CPU and CUDA agree to float rounding.
    MTPS_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
  }

  std::string device() const override { return "cuda:" + std::to_string(ordinal_); }
  bool is_host() const override { return false; }

  void* AllocateBytes(size_t bytes) override {
    void* p = nullptr;
    MTPS_CUDA_CHECK(cudaSetDevice(ordinal_));
    MTPS_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 4 : bytes));
    MTPS_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes == 0 ? 4 : bytes, stream_));
    MTPS_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return p;
  }
  void FreeBytes(void* p) override {
    cudaStreamSynchronize(stream_);
    MTPS_CUDA_CHECK(cudaFree(p));
  }
  void CopyToDevice(const void* host, void* dev, size_t bytes) override {
    if (bytes == 0) return;
    MTPS_CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void CopyToHost(const void* dev, void* host, size_t bytes) override {
    if (bytes == 0) return;
    MTPS_CUDA_CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, stream_));
    MTPS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void Synchronize() override { MTPS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void Fill(float* x, size_t n, float value) override {
    if (n == 0) return;
    FillKernel<<<Blocks(n), kThreads, 0, stream_>>>(x, n, value);
    Launched();
  }

  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
            int lda, const float* b, int ldb, float beta, float* c, int ldc) override {
    if (m == 0 || n == 0) return;
    MTPS_CUBLAS_CHECK(cublasSgemm(blas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                  a, lda, &beta, c, ldc));
  }

  void BiasActivation(int rows, int cols, const float* bias, Activation act, float* y,
                      int ldy) override {
    if (rows * cols == 0) return;
    BiasActivationKernel<<<Blocks(size_t(rows) * cols), kThreads, 0, stream_>>>(
        rows, cols, bias, act == Activation::kRelu, y, ldy);
    Launched();
  }
  void ReluBackward(int rows, int cols, const float* y, int ldy, float* dy, int lddy) override {
    if (rows * cols == 0) return;
    ReluBackwardKernel<<<Blocks(size_t(rows) * cols), kThreads, 0, stream_>>>(rows, cols, y, ldy,
                                                                             dy, lddy);
    Launched();
  }
  void ColumnSum(int rows, int cols, const float* x, int ldx, float* out) override {
    if (cols == 0) return;
    ColumnSumKernel<<<Blocks(cols), kThreads, 0, stream_>>>(rows, cols, x, ldx, out);
    Launched();
  }
  void CopyBlock(int rows, int cols, const float* src, int lds, float* dst, int ldd,
                 bool accumulate) override {
    if (rows * cols == 0) return;
    CopyBlockKernel<<<Blocks(size_t(rows) * cols), kThreads, 0, stream_>>>(rows, cols, src, lds,
                                                                          dst, ldd, accumulate);
    Launched();
  }
  void Dropout(int rows, int cols, float rate, uint64_t seed, float* x, int ldx) override {
    if (rows * cols == 0) return;
    DropoutKernel<<<Blocks(size_t(rows) * cols), kThreads, 0, stream_>>>(rows, cols, rate, seed,
                                                                        x, ldx);
    Launched();
  }
  void RowSoftmax(int rows, int cols, float* x, int ldx) override {
    if (rows == 0) return;
    RowSoftmaxKernel<<<Blocks(rows), kThreads, 0, stream_>>>(rows, cols, x, ldx);
    Launched();
  }
  void RowSoftmaxBackward(int rows, int cols, const float* y, int ldy, const float* dy, int lddy,
                          float* dx, int lddx) override {
    if (rows == 0) return;
    RowSoftmaxBackwardKernel<<<Blocks(rows), kThreads, 0, stream_>>>(rows, cols, y, ldy, dy,
                                                                     lddy, dx, lddx);
    Launched();
  }
  void MixExperts(int rows, int width, const ExpertRanges& ranges, const float* gate, int ldg,
                  const float* experts, int lde, float* out, int ldo) override {
    if (rows * width == 0) return;
    MixExpertsKernel<<<Blocks(size_t(rows) * width), kThreads, 0, stream_>>>(
        rows, width, ranges, gate, ldg, experts, lde, out, ldo);
    Launched();
  }
  void MixExpertsBackward(int rows, int width, const ExpertRanges& ranges, const float* gate,
                          int ldg, const float* experts, int lde, const float* dout, int lddo,
                          float* dgate, int lddg, float* dexperts, int ldde) override {
    if (rows * ranges.total() == 0) return;
    MixExpertsBackwardKernel<<<Blocks(size_t(rows) * ranges.total()), kThreads, 0, stream_>>>(
        rows, width, ranges, gate, ldg, experts, lde, dout, lddo, dgate, lddg, dexperts, ldde);
    Launched();
  }
  void PoolForward(const PoolingArgs<float>& args) override {
    if (args.batch * args.dim == 0) return;
    PoolForwardKernel<<<Blocks(size_t(args.batch) * args.dim), kThreads, 0, stream_>>>(args);
    Launched();
  }
  void PoolBackward(const PoolingArgs<float>& args, float* table_grad) override {
    if (args.batch * args.dim == 0) return;
    PoolBackwardKernel<<<Blocks(size_t(args.batch) * args.dim), kThreads, 0, stream_>>>(
        args, table_grad);
    Launched();
  }
  void Multiply(int rows, int cols, const float* a, int lda, const float* b, int ldb, float* c,
                int ldc, bool accumulate) override {
    cuda::LaunchMultiply(rows, cols, a, lda, b, ldb, c, ldc, accumulate, stream_);
  }
  void LayerNorm(int rows, int cols, const float* x, int ldx, const float* gamma,
                 const float* beta, float* y, int ldy, float* xhat, float* rstd) override {
    cuda::LaunchLayerNorm(rows, cols, x, ldx, gamma, beta, y, ldy, xhat, rstd, stream_);
  }
  void LayerNormBackward(int rows, int cols, const float* xhat, const float* rstd,
                         const float* gamma, const float* dy, int lddy, float* dx, int lddx,
                         float* dgamma, float* dbeta) override {
    cuda::LaunchLayerNormBackward(rows, cols, xhat, rstd, gamma, dy, lddy, dx, lddx, dgamma,
                                  dbeta, stream_);
  }
  void PairwiseDot(int rows, int fields, int dim, const float* x, int ldx, float* out,
                   int ldo) override {
    cuda::LaunchPairwiseDot(rows, fields, dim, x, ldx, out, ldo, stream_);
  }
  void PairwiseDotBackward(int rows, int fields, int dim, const float* x, int ldx,
                           const float* dout, int lddo, float* dx, int lddx) override {
    cuda::LaunchPairwiseDotBackward(rows, fields, dim, x, ldx, dout, lddo, dx, lddx, stream_);
  }
  void FmInteraction(int rows, int fields, int dim, const float* x, int ldx, float* out,
                     int ldo) override {
    cuda::LaunchFmInteraction(rows, fields, dim, x, ldx, out, ldo, stream_);
  }
  void FmInteractionBackward(int rows, int fields, int dim, const float* x, int ldx,
                             const float* dout, int lddo, float* dx, int lddx) override {
    cuda::LaunchFmInteractionBackward(rows, fields, dim, x, ldx, dout, lddo, dx, lddx, stream_);
  }
  void GatherSequence(const SequenceShape& s, const int32_t* rows, const float* table,
                      float* out) override {
    cuda::LaunchGatherSequence(s, rows, table, out, stream_);
  }
  void ScatterSequence(const SequenceShape& s, const int32_t* rows, const float* dout,
                       float* table_grad) override {
    cuda::LaunchScatterSequence(s, rows, dout, table_grad, stream_);
  }
  void AddPositions(const SequenceShape& s, const float* positions, float* x) override {
    cuda::LaunchAddPositions(s, positions, x, stream_);
  }
  void AddPositionsBackward(const SequenceShape& s, const float* dx, float* dpositions) override {
    cuda::LaunchAddPositionsBackward(s, dx, dpositions, stream_);
  }
  void AttentionFeatures(const SequenceShape& s, const float* x, const float* target, int ldt,
                         float* features) override {
    cuda::LaunchAttentionFeatures(s, x, target, ldt, features, stream_);
  }
  void AttentionFeaturesBackward(const SequenceShape& s, const float* x, const float* target,
                                 int ldt, const float* dfeatures, float* dx, float* dtarget,
                                 int lddt) override {
    cuda::LaunchAttentionFeaturesBackward(s, x, target, ldt, dfeatures, dx, dtarget, lddt,
                                          stream_);
  }
  void SequenceWeightedSum(const SequenceShape& s, const float* weights, const float* x,
                           float* out, int ldo) override {
    cuda::LaunchSequenceWeightedSum(s, weights, x, out, ldo, stream_);
  }
  void SequenceWeightedSumBackward(const SequenceShape& s, const float* weights, const float* x,
                                   const float* dout, int lddo, float* dweights,
                                   float* dx) override {
    cuda::LaunchSequenceWeightedSumBackward(s, weights, x, dout, lddo, dweights, dx, stream_);
  }
  void SequenceSoftmax(const SequenceShape& s, float* scores) override {
    cuda::LaunchSequenceSoftmax(s, scores, stream_);
  }
  void SequenceSoftmaxBackward(const SequenceShape& s, const float* w, float* dw) override {
    cuda::LaunchSequenceSoftmaxBackward(s, w, dw, stream_);
  }
  void SelfAttention(const AttentionArgs<float>& a) override {
    cuda::LaunchSelfAttention(a, stream_);
  }
  void SelfAttentionBackward(const AttentionArgs<float>& a, const float* dout,
                             float* dqkv) override {
    cuda::LaunchSelfAttentionBackward(a, dout, dqkv, stream_);
  }

  void BceWithLogits(int n, const float* z, int ldz, const float* y, int ldy, float grad_scale,
                     float* pred, float* dz, int lddz, float* loss_sum) override {
    MTPS_CUDA_CHECK(cudaMemsetAsync(loss_sum, 0, sizeof(float), stream_));
    if (n == 0) return;
    BceKernel<<<Blocks(n), kThreads, 0, stream_>>>(n, z, ldz, y, ldy, grad_scale, pred, dz, lddz,
                                                   loss_sum);
    Launched();
  }
  void SquaredError(int n, const float* z, int ldz, const float* y, int ldy, float grad_scale,
                    float* pred, float* dz, int lddz, float* loss_sum) override {
    MTPS_CUDA_CHECK(cudaMemsetAsync(loss_sum, 0, sizeof(float), stream_));
    if (n == 0) return;
    SquaredErrorKernel<<<Blocks(n), kThreads, 0, stream_>>>(n, z, ldz, y, ldy, grad_scale, pred,
                                                            dz, lddz, loss_sum);
    Launched();
  }
  void ProductBceWithLogits(int n, const float* za, const float* zb, int ldz, const float* y,
                            int ldy, float grad_scale, float* pred, float* dza, float* dzb,
                            int lddz, float* loss_sum) override {
    MTPS_CUDA_CHECK(cudaMemsetAsync(loss_sum, 0, sizeof(float), stream_));
    if (n == 0) return;
    ProductBceKernel<<<Blocks(n), kThreads, 0, stream_>>>(n, za, zb, ldz, y, ldy, grad_scale,
                                                          pred, dza, dzb, lddz, loss_sum);
    Launched();
  }

 private:
  // A failed launch is a bug or a lost device: neither is recoverable here.
  void Launched() { MTPS_CUDA_CHECK(cudaGetLastError()); }

  int ordinal_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
};

}  // namespace

int CudaDeviceCountImpl() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

StatusOr<std::unique_ptr<Backend<float>>> MakeCudaBackend(int ordinal) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Unavailable("device 'cuda:" + std::to_string(ordinal) +
                       "': no usable CUDA device (cudaGetDeviceCount: " +
                       cudaGetErrorString(err) + ")");
  }
  if (ordinal >= count) {
    return NotFound("device 'cuda:" + std::to_string(ordinal) + "': only " +
                    std::to_string(count) + " CUDA device(s) present");
  }
  return std::unique_ptr<Backend<float>>(std::make_unique<CudaBackend>(ordinal));
}

}  // namespace mtps::models
