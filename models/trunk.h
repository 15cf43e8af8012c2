// Trunk: the shared part of a multi-task model between the input matrix X and the task
// towers — a shared MLP, MMoE's experts and gates, PLE's CGC levels, or (ESMM) nothing.
// It hands each task a representation and takes back that representation's gradient.
//
//   std::unique_ptr<Trunk<float>> trunk = MakeMmoeTrunk(backend, &params, spec.model, x_cols,
//                                                       num_tasks, max_batch);
//   trunk->Forward(x, train, step_seed);
//   tower[t].Forward(trunk->task_out(t, B), ...);
//   trunk->ZeroGrads(B);                      // then towers accumulate into task_out_grad
//   trunk->Backward(x, &dx);                  // dx accumulated
//
// Not thread-safe.
#pragma once

#include <memory>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/tensor.h"
#include "protocol/job_spec.h"

namespace mtps::models {

template <typename T>
class Trunk {
 public:
  virtual ~Trunk() = default;
  // Columns of every task's representation.
  virtual int out_cols() const = 0;
  virtual void Forward(MatrixView<T> x, bool train, uint64_t step_seed) = 0;
  virtual MatrixView<T> task_out(int task, int batch) = 0;
  virtual MatrixView<T> task_out_grad(int task, int batch) = 0;
  // Zeroes every gradient that consumers accumulate into, before the towers' backward.
  virtual void ZeroGrads(int batch) = 0;
  virtual void Backward(MatrixView<T> x, MatrixView<T>* dx) = 0;
};

// X itself for every task (ESMM's towers read the shared embeddings directly).
template <typename T>
std::unique_ptr<Trunk<T>> MakeIdentityTrunk(Backend<T>* backend, int in, int max_batch);
// One MLP (model.bottom_units) shared by all tasks.
template <typename T>
std::unique_ptr<Trunk<T>> MakeSharedBottomTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                                const ModelSpec& spec, int in, int max_batch);
// model.experts experts (MLPs of model.expert_units), one softmax gate per task.
template <typename T>
std::unique_ptr<Trunk<T>> MakeMmoeTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                        const ModelSpec& spec, int in, int tasks,
                                        int max_batch);
// model.ple_levels CGC levels of per-task and shared experts.
template <typename T>
std::unique_ptr<Trunk<T>> MakePleTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                       const ModelSpec& spec, int in, int tasks, int max_batch);

}  // namespace mtps::models
