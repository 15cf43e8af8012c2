// RowOptimizer: the update formulas of every optimizer mtps supports, as simple loops
// over one row that the compiler vectorizes (no per-element branches, no aliasing).
#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>

namespace mtps::ps {
namespace row_kernels {

// Each kernel is compiled for AVX2 and for baseline x86-64 and picked at load time. There
// is no FMA contraction (ISO C++ mode) and sqrt/div are correctly rounded in both, so both
// versions give bit-identical results: servers on different CPUs agree.
// clang (the fuzz build) refuses clones of a function optimizer.h's inline dispatch used
// first, so it gets the baseline version only.
#if defined(__clang__)
#define MTPS_ROW_KERNEL
#else
#define MTPS_ROW_KERNEL [[gnu::target_clones("avx2", "default")]]
#endif

MTPS_ROW_KERNEL void SgdRow(float* __restrict w, const float* __restrict g, int dim, float lr,
                            float l2) {
  for (int i = 0; i < dim; ++i) {
    const float gi = g[i] + l2 * w[i];
    w[i] -= lr * gi;
  }
}

[[gnu::always_inline]] inline void AdagradLoop(float* __restrict w, float* __restrict acc,
                                               const float* __restrict g, int dim, float lr,
                                               float l2, float eps) {
  for (int i = 0; i < dim; ++i) {
    const float gi = g[i] + l2 * w[i];
    const float a = acc[i] + gi * gi;
    acc[i] = a;
    w[i] -= lr * gi / (std::sqrt(a) + eps);
  }
}

MTPS_ROW_KERNEL void AdagradRow(float* __restrict w, float* __restrict acc,
                                const float* __restrict g, int dim, float lr, float l2,
                                float eps) {
  AdagradLoop(w, acc, g, dim, lr, l2, eps);
}

MTPS_ROW_KERNEL void AdagradRow16(float* __restrict w, float* __restrict acc,
                                  const float* __restrict g, float lr, float l2, float eps) {
  AdagradLoop(w, acc, g, 16, lr, l2, eps);
}

}  // namespace row_kernels
namespace {

// decay = 1 - lr * weight_decay (1 for plain Adam); step = lr / (1 - beta1^t);
// inv_bc2 = 1 / sqrt(1 - beta2^t).
MTPS_ROW_KERNEL void AdamRow(float* __restrict w, float* __restrict m, float* __restrict v,
                             const float* __restrict g, int dim, float l2, float beta1,
                             float beta2, float eps, float decay, float step, float inv_bc2) {
  const float one_minus_b1 = 1.0f - beta1;
  const float one_minus_b2 = 1.0f - beta2;
  for (int i = 0; i < dim; ++i) {
    const float gi = g[i] + l2 * w[i];
    const float mi = beta1 * m[i] + one_minus_b1 * gi;
    const float vi = beta2 * v[i] + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - step * mi / (std::sqrt(vi) * inv_bc2 + eps);
  }
}

MTPS_ROW_KERNEL void FtrlRow(float* __restrict w, float* __restrict z, float* __restrict n,
                             const float* __restrict g, int dim, float l2, float inv_alpha,
                             float beta, float l1, float ftrl_l2) {
  for (int i = 0; i < dim; ++i) {
    const float gi = g[i] + l2 * w[i];
    const float n_old = n[i];
    const float n_new = n_old + gi * gi;
    const float sqrt_new = std::sqrt(n_new);
    const float sigma = (sqrt_new - std::sqrt(n_old)) * inv_alpha;
    const float zi = z[i] + gi - sigma * w[i];
    z[i] = zi;
    n[i] = n_new;
    const float shrunk = zi - std::copysign(l1, zi);
    const float denom = (beta + sqrt_new) * inv_alpha + ftrl_l2;
    w[i] = std::fabs(zi) <= l1 ? 0.0f : -shrunk / denom;
  }
}

#undef MTPS_ROW_KERNEL

}  // namespace

int StateFloats(const OptimizerSpec& spec, int dim) {
  switch (spec.type) {
    case OptimizerSpec::Type::kSgd: return 0;
    case OptimizerSpec::Type::kAdagrad: return dim;
    case OptimizerSpec::Type::kAdam:
    case OptimizerSpec::Type::kAdamW:
    case OptimizerSpec::Type::kFtrl: return 2 * dim;
  }
  return 0;
}

RowOptimizer::RowOptimizer(const OptimizerSpec& spec) : spec_(spec) {}

void RowOptimizer::InitState(float* state, int dim) const {
  const float init =
      spec_.type == OptimizerSpec::Type::kAdagrad ? spec_.initial_accumulator : 0.0f;
  std::fill(state, state + StateFloats(dim), init);
}

void RowOptimizer::ApplyWithState(float* weights, float* state, const float* grad, int dim,
                                  uint64_t step_count) const {
  const OptimizerSpec& s = spec_;
  switch (s.type) {
    case OptimizerSpec::Type::kSgd:
    case OptimizerSpec::Type::kAdagrad:
      Apply(weights, state, grad, dim, step_count);
      return;
    case OptimizerSpec::Type::kAdam:
    case OptimizerSpec::Type::kAdamW: {
      // Bias corrections in double: beta^t of a float loses the small t's precision.
      const double t = static_cast<double>(std::max<uint64_t>(step_count, 1));
      const double bc1 = 1.0 - std::pow(static_cast<double>(s.beta1), t);
      const double bc2 = 1.0 - std::pow(static_cast<double>(s.beta2), t);
      const float decay =
          s.type == OptimizerSpec::Type::kAdamW ? 1.0f - s.lr * s.weight_decay : 1.0f;
      AdamRow(weights, state, state + dim, grad, dim, s.l2, s.beta1, s.beta2, s.epsilon, decay,
              static_cast<float>(s.lr / bc1), static_cast<float>(1.0 / std::sqrt(bc2)));
      return;
    }
    case OptimizerSpec::Type::kFtrl:
      FtrlRow(weights, state, state + dim, grad, dim, s.l2, 1.0f / s.ftrl_alpha, s.ftrl_beta,
              s.ftrl_l1, s.ftrl_l2);
      return;
  }
}

}  // namespace mtps::ps
