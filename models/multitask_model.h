// MultiTaskModel: a multi-task recommender built from a JobSpec (model.type:
// shared_bottom, mmoe, ple, esmm): pooled embeddings + dense features (+ an encoded
// behaviour sequence, model.sequence) -> interaction layer (model.interaction) -> trunk -> one
// tower per task -> per-task loss (bce / mse), combined with fixed or learned
// uncertainty weights. It computes predictions, the losses, the dense gradients (in
// parameters()) and the embedding row gradients, on any Backend.
//
//   MTPS_ASSIGN_OR_RETURN(auto backend, MakeBackend<float>("cpu", /*threads=*/2));
//   MTPS_ASSIGN_OR_RETURN(auto model, MultiTaskModel<float>::Create(spec, std::move(backend)));
//   ModelOutput out;
//   MTPS_RETURN_IF_ERROR(model->Train(input, step, &out));   // grads for one batch
//   optimizer.Apply(model->parameters().values(), model->parameters().grads(), ...);
//   push(out.row_grads);
//
// ESMM: tasks[0] is CTR (label: click) and tasks[1] is CTCVR (label: click and buy),
// both over all impressions; pCTCVR = pCTR * pCVR, and the CTCVR prediction is reported
// for tasks[1]. Tasks after the first two get ordinary towers.
//
// Task weighting (training.task_weighting): kFixed minimizes sum_t weight_t * loss_t with
// the spec's weights; kUncertainty (Kendall et al. 2018) minimizes
// sum_t exp(-s_t) * loss_t + s_t with s_t a learned log variance in the dense block
// "task_weighting/log_variance" (starting at 0; the spec's weights are then unused).
// loss_t is the batch mean of the task's loss (bce from logits, or squared error).
//
// Buffers are allocated at Create() for max_batch; steady-state steps allocate nothing.
// A model is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/input_layer.h"
#include "models/interaction.h"
#include "models/mlp.h"
#include "models/model_input.h"
#include "models/sequence_encoder.h"
#include "models/trunk.h"
#include "protocol/job_spec.h"
#include "base/status.h"

namespace mtps::models {

struct ModelOptions {
  int max_batch = 0;  // 0: max(training.batch_size, training.eval_batch_size)
  uint64_t seed = 0;  // initial weights and dropout; 0: training.seed
};

template <typename T>
class MultiTaskModel {
 public:
  static StatusOr<std::unique_ptr<MultiTaskModel>> Create(const JobSpec& spec,
                                                          std::unique_ptr<Backend<T>> backend,
                                                          const ModelOptions& options = {});

  // Forward and backward with dropout drawn for `step`: fills `out` (losses, predictions,
  // row gradients) and parameters().grads(). Needs labels.
  Status Train(const ModelInputT<T>& in, uint64_t step, ModelOutputT<T>* out);
  // Forward without dropout: predictions, and losses when the input has labels.
  Status Evaluate(const ModelInputT<T>& in, ModelOutputT<T>* out);
  // The forward half of Train(in, step): the objective that Train differentiates.
  Status TrainingLoss(const ModelInputT<T>& in, uint64_t step, ModelOutputT<T>* out);

  DenseParameters<T>& parameters() { return params_; }
  Backend<T>& backend() { return *backend_; }
  const InputLayout& layout() const { return input_->layout(); }
  int max_batch() const { return max_batch_; }
  int num_tasks() const { return static_cast<int>(tasks_.size()); }

 private:
  enum class Phase { kEval, kTrainForward, kTrain };
  explicit MultiTaskModel(std::unique_ptr<Backend<T>> backend);
  Status Run(const ModelInputT<T>& in, uint64_t step, Phase phase, ModelOutputT<T>* out);
  void ComputeTaskWeights();
  // Each side sequence has as many values per record as the items (InvalidArgument if not).
  Status CheckSequencesAligned(const ModelInputT<T>& in) const;
  // The columns of field `field` in X (or dX).
  MatrixView<T> FieldColumns(MatrixView<T> m, int field) const;

  std::unique_ptr<Backend<T>> backend_;
  DenseParameters<T> params_;
  std::unique_ptr<InputLayer<T>> input_;
  std::unique_ptr<SequenceEncoder<T>> sequence_;  // null: no encoded sequence field
  // The sequence's fields (the items, then model.sequence.side) and their targets' fields.
  std::vector<int> sequence_fields_, target_fields_;
  std::unique_ptr<Interaction<T>> interaction_;  // null: the trunk reads X
  std::unique_ptr<Trunk<T>> trunk_;
  std::vector<std::unique_ptr<Mlp<T>>> towers_;
  std::vector<TaskSpec> tasks_;
  bool esmm_ = false;
  bool uncertainty_ = false;
  size_t log_variance_offset_ = 0;
  int max_batch_ = 0;
  uint64_t seed_ = 0;

  DeviceArray<T> loss_sums_;    // [T]
  DeviceArray<T> predictions_;  // [T x max_batch]
  std::vector<T> host_loss_sums_, host_log_variance_, host_log_variance_grad_;
  std::vector<double> weights_;
};

}  // namespace mtps::models
