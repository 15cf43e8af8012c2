// RowOptimizer: the one implementation of optimizer math in mtps (SGD, Adagrad, Adam,
// AdamW, FTRL-Proximal), applied in place to one row of weights and its state.
//
//   RowOptimizer opt(spec);                        // spec: OptimizerSpec (job_spec.h)
//   std::vector<float> w(dim), state(opt.StateFloats(dim));
//   opt.InitState(state.data(), dim);
//   opt.Apply(w.data(), state.data(), grad.data(), dim, /*step_count=*/1);  // t = 1, 2, ...
//
// A sparse table row and a whole dense block are the same thing to it: `dim` floats of
// weights plus StateFloats(dim) floats of state, so servers, dense blocks and the
// in-process LocalTrainer all call this and can never drift apart.
//
// State layout (floats, each `dim` long, in this order; checkpoints record it):
//   kSgd:           none
//   kAdagrad:       accumulator (starts at initial_accumulator)
//   kAdam, kAdamW:  m (first moment), v (second moment), both start at 0
//   kFtrl:          z, n (McMahan et al. 2013), both start at 0
// Every type first adds `l2 * w` to the gradient ("L2 penalty added to the gradient").
// AdamW then also decays the weights by lr * weight_decay * w (decoupled, as PyTorch).
// FTRL uses ftrl_alpha/ftrl_beta/ftrl_l1/ftrl_l2 and ignores lr.
//
// Thread-safety: a RowOptimizer is immutable after construction; Apply may run
// concurrently on disjoint rows.
#pragma once

#include <cstdint>

#include "protocol/job_spec.h"

namespace mtps::ps {

// The per-row update loops (optimizer.cc), compiled for AVX2 and baseline x86-64.
namespace row_kernels {
void SgdRow(float* __restrict w, const float* __restrict g, int dim, float lr, float l2);
void AdagradRow(float* __restrict w, float* __restrict acc, const float* __restrict g, int dim,
                float lr, float l2, float eps);
// The same for dim 16 (two AVX2 vectors, no remainder loop): the common embedding width.
void AdagradRow16(float* __restrict w, float* __restrict acc, const float* __restrict g,
                  float lr, float l2, float eps);
}  // namespace row_kernels

// Floats of optimizer state that one row of `dim` weights needs under `spec`.
int StateFloats(const OptimizerSpec& spec, int dim);

class RowOptimizer {
 public:
  explicit RowOptimizer(const OptimizerSpec& spec);

  const OptimizerSpec& spec() const { return spec_; }
  int StateFloats(int dim) const { return ps::StateFloats(spec_, dim); }

  // Writes the initial state of one row (StateFloats(dim) floats).
  void InitState(float* state, int dim) const;

  // One update of `weights` and `state` (both `dim` long rows, laid out as above) by
  // `grad`. `step_count` is this row's number of updates including this one (1 for the
  // first); Adam and AdamW use it for bias correction, the others ignore it.
  // The buffers must not overlap. Gradients are assumed finite (callers validate).
  // Inline, so that a loop over many rows branches on the type without a call into
  // this class for every row.
  void Apply(float* weights, float* state, const float* grad, int dim,
             uint64_t step_count) const {
    switch (spec_.type) {
      case OptimizerSpec::Type::kSgd:
        row_kernels::SgdRow(weights, grad, dim, spec_.lr, spec_.l2);
        return;
      case OptimizerSpec::Type::kAdagrad:
        row_kernels::AdagradRow(weights, state, grad, dim, spec_.lr, spec_.l2, spec_.epsilon);
        return;
      default:
        ApplyWithState(weights, state, grad, dim, step_count);
    }
  }

 private:
  // Adam, AdamW and FTRL.
  void ApplyWithState(float* weights, float* state, const float* grad, int dim,
                      uint64_t step_count) const;

  OptimizerSpec spec_;
};

}  // namespace mtps::ps
