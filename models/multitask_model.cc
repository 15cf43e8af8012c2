// MultiTaskModel: spec validation, assembly of input layer, trunk and towers, and the
// step: forward, task heads and weighting, backward.
#include "models/multitask_model.h"

#include <algorithm>
#include <cmath>

#include "models/kernel_math.h"

namespace mtps::models {
namespace {

Status CheckUnits(const std::vector<int>& units, const std::string& field, bool allow_empty) {
  if (units.empty() && !allow_empty) return InvalidArgument(field + ": needs at least one layer");
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i] <= 0) {
      return InvalidArgument(field + "[" + std::to_string(i) + "]: must be > 0, got " +
                             std::to_string(units[i]));
    }
  }
  return Status::OK();
}

Status ValidateModelSpec(const JobSpec& spec) {
  const ModelSpec& m = spec.model;
  MTPS_RETURN_IF_ERROR(CheckModelInputs(spec));
  MTPS_RETURN_IF_ERROR(CheckUnits(m.tower_units, "model.tower_units", true));
  if (!(m.dropout >= 0.0f && m.dropout < 1.0f)) {
    return InvalidArgument("model.dropout: must be in [0, 1), got " + std::to_string(m.dropout));
  }
  switch (m.type) {
    case ModelSpec::Type::kSharedBottom:
      return CheckUnits(m.bottom_units, "model.bottom_units", false);
    case ModelSpec::Type::kMmoe:
      if (m.experts <= 0) {
        return InvalidArgument("model.experts: must be > 0, got " + std::to_string(m.experts));
      }
      return CheckUnits(m.expert_units, "model.expert_units", false);
    case ModelSpec::Type::kPle:
      if (m.ple_levels <= 0 || m.ple_task_experts <= 0 || m.ple_shared_experts <= 0) {
        return InvalidArgument("model.ple_levels/ple_task_experts/ple_shared_experts: "
                               "must be > 0, got " +
                               std::to_string(m.ple_levels) + "/" +
                               std::to_string(m.ple_task_experts) + "/" +
                               std::to_string(m.ple_shared_experts));
      }
      return CheckUnits(m.expert_units, "model.expert_units", false);
    case ModelSpec::Type::kEsmm:
      MTPS_RETURN_IF_ERROR(CheckUnits(m.bottom_units, "model.bottom_units", true));
      if (spec.tasks.size() < 2) {
        return InvalidArgument("model.type esmm: needs tasks[0] = CTR and tasks[1] = CTCVR, got " +
                               std::to_string(spec.tasks.size()) + " task(s)");
      }
      for (int t = 0; t < 2; ++t) {
        if (spec.tasks[t].loss != TaskSpec::Loss::kBce) {
          return InvalidArgument("model.type esmm: tasks[" + std::to_string(t) + "] '" +
                                 spec.tasks[t].name + "' must use loss bce");
        }
      }
      return Status::OK();
  }
  return InvalidArgument("model.type: unknown");
}

}  // namespace

template <typename T>
MultiTaskModel<T>::MultiTaskModel(std::unique_ptr<Backend<T>> backend)
    : backend_(std::move(backend)), params_(backend_.get()) {}

template <typename T>
StatusOr<std::unique_ptr<MultiTaskModel<T>>> MultiTaskModel<T>::Create(
    const JobSpec& spec, std::unique_ptr<Backend<T>> backend, const ModelOptions& options) {
  if (backend == nullptr) return InvalidArgument("MultiTaskModel::Create: no backend");
  MTPS_ASSIGN_OR_RETURN(InputLayout layout, InputLayout::FromSpec(spec));
  MTPS_RETURN_IF_ERROR(ValidateModelSpec(spec));
  const int max_batch = options.max_batch > 0
                            ? options.max_batch
                            : std::max(spec.training.batch_size, spec.training.eval_batch_size);
  if (max_batch <= 0) {
    return InvalidArgument("max batch must be > 0, got " + std::to_string(max_batch));
  }

  std::unique_ptr<MultiTaskModel> model(new MultiTaskModel(std::move(backend)));
  Backend<T>* be = model->backend_.get();
  DenseParameters<T>* params = &model->params_;
  const ModelSpec& m = spec.model;
  const int tasks = static_cast<int>(spec.tasks.size());
  const int in = layout.width();
  model->max_batch_ = max_batch;
  model->seed_ = options.seed != 0 ? options.seed : spec.training.seed;
  model->tasks_ = spec.tasks;
  model->esmm_ = m.type == ModelSpec::Type::kEsmm;
  if (!m.sequence.field.empty() && m.sequence.encoder != SequenceSpec::Encoder::kSum &&
      m.sequence.encoder != SequenceSpec::Encoder::kMean) {
    std::vector<std::pair<std::string, std::string>> names{{m.sequence.field, m.sequence.target}};
    for (const SequenceSpec::Side& side : m.sequence.side) names.emplace_back(side.field, side.target);
    std::vector<int> dims;
    for (const auto& [field, target] : names) {
      int f = -1, t = -1;
      for (size_t i = 0; i < layout.fields.size(); ++i) {
        if (layout.fields[i].name == field) f = static_cast<int>(i);
        if (layout.fields[i].name == target) t = static_cast<int>(i);
      }
      if (f < 0 || t < 0 || !layout.fields[f].sequence || layout.fields[f].max_length <= 0) {
        return InvalidArgument("model.sequence: the sequence field '" + field +
                               "', its target field '" + target +
                               "' and the sequence's max_length are required");
      }
      model->sequence_fields_.push_back(f);
      model->target_fields_.push_back(t);
      dims.push_back(layout.tables[layout.fields[f].table].dim);
    }
    model->sequence_ = std::make_unique<SequenceEncoder<T>>(
        be, params, m.sequence, std::move(dims),
        layout.fields[model->sequence_fields_[0]].max_length, max_batch);
  }
  const int fields = static_cast<int>(layout.fields.size());
  const int field_dim = fields > 0 ? layout.tables[layout.fields[0].table].dim : 0;
  model->input_ = std::make_unique<InputLayer<T>>(be, std::move(layout), max_batch);
  model->interaction_ = MakeInteraction<T>(be, params, m.interaction, in, fields, field_dim,
                                           max_batch);
  const int trunk_in = model->interaction_ != nullptr ? model->interaction_->out_cols() : in;

  switch (m.type) {
    case ModelSpec::Type::kSharedBottom:
      model->trunk_ = MakeSharedBottomTrunk<T>(be, params, m, trunk_in, max_batch);
      break;
    case ModelSpec::Type::kMmoe:
      model->trunk_ = MakeMmoeTrunk<T>(be, params, m, trunk_in, tasks, max_batch);
      break;
    case ModelSpec::Type::kPle:
      model->trunk_ = MakePleTrunk<T>(be, params, m, trunk_in, tasks, max_batch);
      break;
    case ModelSpec::Type::kEsmm:
      model->trunk_ = MakeIdentityTrunk<T>(be, trunk_in, max_batch);
      break;
  }
  for (int t = 0; t < tasks; ++t) {
    std::vector<int> units;
    // ESMM's two towers are whole networks over the shared embeddings.
    if (model->esmm_) units = m.bottom_units;
    units.insert(units.end(), m.tower_units.begin(), m.tower_units.end());
    units.push_back(1);
    model->towers_.push_back(std::make_unique<Mlp<T>>(
        be, params, std::string(ModelTypeName(m.type)) + "/tower" + std::to_string(t),
        MlpOptions{.in = model->trunk_->out_cols(), .units = units, .groups = 1,
                   .relu_last = false, .dropout = m.dropout},
        max_batch));
  }
  model->uncertainty_ = spec.training.task_weighting == TrainingSpec::TaskWeighting::kUncertainty;
  if (model->uncertainty_) {
    model->log_variance_offset_ =
        params->Add("task_weighting/log_variance", tasks, DenseInit::kZeros);
  }
  params->Finalize(model->seed_);

  model->loss_sums_ = DeviceArray<T>(be, tasks);
  model->predictions_ = DeviceArray<T>(be, static_cast<size_t>(tasks) * max_batch);
  model->host_loss_sums_.resize(tasks);
  model->host_log_variance_.resize(tasks);
  model->host_log_variance_grad_.resize(tasks);
  model->weights_.resize(tasks);
  return model;
}

template <typename T>
MatrixView<T> MultiTaskModel<T>::FieldColumns(MatrixView<T> m, int field) const {
  const InputLayout& layout = input_->layout();
  return m.columns(input_->field_column(field), layout.tables[layout.fields[field].table].dim);
}

template <typename T>
Status MultiTaskModel<T>::Train(const ModelInputT<T>& in, uint64_t step, ModelOutputT<T>* out) {
  if (in.labels == nullptr) return InvalidArgument("Train: the input has no labels");
  return Run(in, step, Phase::kTrain, out);
}

template <typename T>
Status MultiTaskModel<T>::Evaluate(const ModelInputT<T>& in, ModelOutputT<T>* out) {
  return Run(in, 0, Phase::kEval, out);
}

template <typename T>
Status MultiTaskModel<T>::TrainingLoss(const ModelInputT<T>& in, uint64_t step,
                                       ModelOutputT<T>* out) {
  if (in.labels == nullptr) return InvalidArgument("TrainingLoss: the input has no labels");
  return Run(in, step, Phase::kTrainForward, out);
}

template <typename T>
void MultiTaskModel<T>::ComputeTaskWeights() {
  const size_t tasks = tasks_.size();
  if (!uncertainty_) {
    for (size_t t = 0; t < tasks; ++t) weights_[t] = tasks_[t].weight;
    return;
  }
  // Kendall et al. 2018: loss_t * exp(-s_t) + s_t, s_t = log variance of task t.
  backend_->CopyToHost(params_.values() + log_variance_offset_, host_log_variance_.data(),
                       tasks * sizeof(T));
  for (size_t t = 0; t < tasks; ++t) weights_[t] = std::exp(-double(host_log_variance_[t]));
}

template <typename T>
Status MultiTaskModel<T>::CheckSequencesAligned(const ModelInputT<T>& in) const {
  const int32_t* items = in.fields[sequence_fields_[0]].offsets;
  for (size_t p = 1; p < sequence_fields_.size(); ++p) {
    const int32_t* side = in.fields[sequence_fields_[p]].offsets;
    for (int r = 0; r < in.batch_size; ++r) {
      if (side[r + 1] - side[r] != items[r + 1] - items[r]) {
        const auto& fields = input_->layout().fields;
        return InvalidArgument(
            "model.sequence.side: record " + std::to_string(r) + " of the batch has " +
            std::to_string(side[r + 1] - side[r]) + " values of '" +
            fields[sequence_fields_[p]].name + "' and " + std::to_string(items[r + 1] - items[r]) +
            " of '" + fields[sequence_fields_[0]].name + "' (a side sequence has one value per " +
            "history item)");
      }
    }
  }
  return Status::OK();
}

template <typename T>
Status MultiTaskModel<T>::Run(const ModelInputT<T>& in, uint64_t step, Phase phase,
                              ModelOutputT<T>* out) {
  MTPS_RETURN_IF_ERROR(input_->Load(in));
  const int batch = input_->batch();
  const int tasks = num_tasks();
  const bool train = phase != Phase::kEval;
  const uint64_t step_seed = Mix64(seed_ ^ Mix64(step ^ 0xD1B54A32D192ED03ull));

  input_->Forward();
  MatrixView<T> x_in = input_->x();
  if (sequence_ != nullptr) {
    MTPS_RETURN_IF_ERROR(CheckSequencesAligned(in));
    std::vector<typename SequenceEncoder<T>::Part> parts;
    for (size_t p = 0; p < sequence_fields_.size(); ++p) {
      const int f = sequence_fields_[p];
      parts.push_back({input_->field_rows(f), input_->table_rows(input_->layout().fields[f].table),
                       FieldColumns(x_in, target_fields_[p]), FieldColumns(x_in, f)});
    }
    sequence_->Forward(input_->sequence_shape(sequence_fields_[0]), parts);
  }
  if (interaction_ != nullptr) interaction_->Forward(x_in);
  MatrixView<T> x = interaction_ != nullptr ? interaction_->out(batch) : x_in;
  trunk_->Forward(x, train, step_seed);
  for (int t = 0; t < tasks; ++t) towers_[t]->Forward(trunk_->task_out(t, batch), train, step_seed);

  ComputeTaskWeights();
  const T* labels = input_->labels();
  for (int t = 0; t < tasks; ++t) {
    const T scale = T(weights_[t] / batch);
    MatrixView<T> z = towers_[t]->out(batch);
    MatrixView<T> dz = towers_[t]->out_grad(batch);
    T* pred = predictions_.data() + static_cast<size_t>(t) * max_batch_;
    if (esmm_ && t == 1) {
      MatrixView<T> z0 = towers_[0]->out(batch), dz0 = towers_[0]->out_grad(batch);
      backend_->ProductBceWithLogits(batch, z0.data, z.data, 1, labels + t, tasks, scale, pred,
                                     dz0.data, dz.data, 1, loss_sums_.data() + t);
    } else if (tasks_[t].loss == TaskSpec::Loss::kBce) {
      backend_->BceWithLogits(batch, z.data, 1, labels + t, tasks, scale, pred, dz.data, 1,
                              loss_sums_.data() + t);
    } else {
      backend_->SquaredError(batch, z.data, 1, labels + t, tasks, scale, pred, dz.data, 1,
                             loss_sums_.data() + t);
    }
  }

  out->predictions.resize(tasks);
  for (int t = 0; t < tasks; ++t) {
    out->predictions[t].resize(batch);
    backend_->CopyToHost(predictions_.data() + static_cast<size_t>(t) * max_batch_,
                         out->predictions[t].data(), batch * sizeof(T));
  }
  out->task_weight.assign(weights_.begin(), weights_.end());
  out->objective = 0;
  if (!input_->has_labels()) {
    out->task_loss.clear();
    return Status::OK();
  }
  backend_->CopyToHost(loss_sums_.data(), host_loss_sums_.data(), tasks * sizeof(T));
  out->task_loss.resize(tasks);
  for (int t = 0; t < tasks; ++t) {
    const double loss = double(host_loss_sums_[t]) / batch;
    if (!std::isfinite(loss)) {
      return FailedPrecondition("task '" + tasks_[t].name + "' loss is " + std::to_string(loss) +
                                " at step " + std::to_string(step) +
                                ": the dense parameters hold non-finite values or diverged");
    }
    out->task_loss[t] = loss;
    out->objective += weights_[t] * loss;
    if (uncertainty_) {
      out->objective += double(host_log_variance_[t]);
      host_log_variance_grad_[t] = T(1.0 - weights_[t] * loss);
    }
  }
  if (phase != Phase::kTrain) return Status::OK();

  trunk_->ZeroGrads(batch);
  for (int t = 0; t < tasks; ++t) {
    MatrixView<T> d_rep = trunk_->task_out_grad(t, batch);
    towers_[t]->Backward(trunk_->task_out(t, batch), &d_rep);
  }
  MatrixView<T> dx_in = input_->dx();
  MatrixView<T> dx = interaction_ != nullptr ? interaction_->out_grad(batch) : dx_in;
  trunk_->Backward(x, &dx);
  if (interaction_ != nullptr) interaction_->Backward(x_in, &dx_in);
  if (sequence_ == nullptr) {
    input_->Backward(out);
  } else {
    // The encoder adds into the target's columns of dX before they are scattered to rows,
    // and its items' gradients join the same table's row gradients after.
    std::vector<MatrixView<T>> douts, dtargets;
    std::vector<const int32_t*> rows;
    std::vector<T*> row_grads;
    for (size_t p = 0; p < sequence_fields_.size(); ++p) {
      const int f = sequence_fields_[p];
      douts.push_back(FieldColumns(dx_in, f));
      dtargets.push_back(FieldColumns(dx_in, target_fields_[p]));
      rows.push_back(input_->field_rows(f));
    }
    std::vector<MatrixView<T>*> dtarget_ptrs;
    for (MatrixView<T>& d : dtargets) dtarget_ptrs.push_back(&d);
    const SequenceShape shape = input_->sequence_shape(sequence_fields_[0]);
    sequence_->Backward(shape, douts, dtarget_ptrs);
    input_->ScatterRowGrads(out);
    for (int f : sequence_fields_) row_grads.push_back(input_->row_grad(input_->layout().fields[f].table));
    sequence_->ScatterItemGrads(shape, rows, row_grads);
    input_->CopyRowGradsToHost(out);
  }
  if (uncertainty_) {
    backend_->CopyToDevice(host_log_variance_grad_.data(), params_.grads() + log_variance_offset_,
                           tasks * sizeof(T));
  }
  return Status::OK();
}

template class MultiTaskModel<float>;
template class MultiTaskModel<double>;

}  // namespace mtps::models
