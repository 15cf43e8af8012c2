// Trainer: pulls, compute and pushes of each step, with slots for prefetched batches.
#include "worker/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "models/metrics.h"

namespace mtps {

// One batch in flight: the batch, the rows pulled for each table, the dense values, and
// the futures of those pulls. Slots are pooled so their buffers are reused.
struct Trainer::Slot {
  Batch* batch = nullptr;
  uint64_t step = 0;
  std::vector<std::vector<float>> rows;  // per table [unique keys x dim]
  std::vector<float> dense;              // every dense block, flat
  bool dense_pulled = false;             // `dense` holds values pulled for this step
  std::vector<DenseBlockOut> dense_out;
  std::vector<std::future<Status>> pulls;
};

Trainer::Trainer(const JobSpec& spec, ParameterStore* store, const TrainerOptions& options)
    : spec_(spec), store_(store), options_(options) {}

Trainer::~Trainer() {
  // Pushes still in flight reference our buffers only until they are sent; waiting for
  // them keeps the store's callbacks from outliving the trainer.
  (void)WaitPushes(0);
}

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobSpec& spec, ParameterStore* store,
                                                   const TrainerOptions& options) {
  if (store == nullptr) return InvalidArgument("Trainer: no parameter store");
  if (options.prefetch < 0 || options.max_staleness < 0) {
    return InvalidArgument("Trainer: prefetch and max_staleness must be >= 0");
  }
  if (options.num_workers < 1 || options.worker_rank < 0 ||
      options.worker_rank >= options.num_workers) {
    return InvalidArgument("Trainer: worker rank " + std::to_string(options.worker_rank) +
                           " outside [0, " + std::to_string(options.num_workers) + ")");
  }
  MTPS_ASSIGN_OR_RETURN(auto backend,
                        models::MakeBackend<float>(options.device, options.cpu_threads));
  MTPS_ASSIGN_OR_RETURN(auto model, models::MultiTaskModel<float>::Create(spec, std::move(backend)));
  std::unique_ptr<Trainer> trainer(new Trainer(spec, store, options));
  trainer->model_ = std::move(model);
  return trainer;
}

Status Trainer::InitParameters() {
  models::DenseParameters<float>& params = model_->parameters();
  std::vector<float> initial(params.size());
  params.CopyValuesToHost(initial.data());
  std::vector<DenseBlockIn> blocks;
  blocks.reserve(params.blocks().size());
  for (size_t i = 0; i < params.blocks().size(); ++i) {
    const models::DenseBlock& b = params.blocks()[i];
    blocks.push_back({static_cast<uint32_t>(i), b.name,
                      std::span<const float>(initial.data() + b.offset, b.size)});
  }
  MTPS_RETURN_IF_ERROR(store_->InitDense(blocks).WithContext("creating the dense blocks"));
  std::vector<float> values;
  MTPS_RETURN_IF_ERROR(PullDenseValues(&values));
  params.CopyValuesFromHost(values.data());
  return Status::OK();
}

uint64_t Trainer::DensePullEvery() const {
  if (options_.sync) return 1;
  // Pulls follow the summed pushes (see Push): the cadence of both.
  if (DenseSyncEvery() > 1) return DenseSyncEvery();
  if (options_.prefetch == 0) return 1;  // exact mode: every step
  const int chosen = spec_.training.dense_pull_every;
  if (chosen > 0) return static_cast<uint64_t>(chosen);
  // Values pulled `prefetch` steps ahead and kept k - 1 more steps are prefetch + k - 1
  // steps old when last used: the largest k within max_staleness.
  return static_cast<uint64_t>(std::max(1, options_.max_staleness - options_.prefetch + 1));
}

uint64_t Trainer::DenseSyncEvery() const {
  if (options_.sync) return 1;  // LocalTrainer and sync workers apply every step
  return static_cast<uint64_t>(std::max(1, spec_.training.dense_sync_every));
}

Status Trainer::PullDenseValues(std::vector<float>* values) {
  const models::DenseParameters<float>& params = model_->parameters();
  values->resize(params.size());
  std::vector<DenseBlockOut> out;
  for (size_t i = 0; i < params.blocks().size(); ++i) {
    const models::DenseBlock& b = params.blocks()[i];
    out.push_back({static_cast<uint32_t>(i), std::span<float>(values->data() + b.offset, b.size)});
  }
  return store_->PullDense(out).get().WithContext("pulling the dense blocks");
}

void Trainer::IssuePulls(Slot* slot, bool train, bool with_dense) {
  const Batch& batch = *slot->batch;
  slot->pulls.clear();
  slot->rows.resize(spec_.tables.size());
  for (size_t t = 0; t < spec_.tables.size(); ++t) {
    const std::vector<uint64_t>& keys = batch.tables[t].unique_keys;
    const int dim = spec_.tables[t].dim;
    slot->rows[t].resize(keys.size() * dim);
    if (keys.empty()) continue;
    slot->pulls.push_back(store_->PullRows(static_cast<uint32_t>(t), keys, dim,
                                           slot->rows[t].data(),
                                           {.step = slot->step, .count_as_sighting = train, .keys_unique = true}));
    if (train) traffic_.sparse_pull_bytes += keys.size() * (sizeof(uint64_t) + dim * sizeof(float));
  }
  // Between dense pulls the model trains on the copy it holds (see dense_pull_every).
  slot->dense_pulled = with_dense && (slot->step - 1) % DensePullEvery() == 0;
  if (!slot->dense_pulled) return;
  const models::DenseParameters<float>& params = model_->parameters();
  slot->dense.resize(params.size());
  slot->dense_out.clear();
  for (size_t i = 0; i < params.blocks().size(); ++i) {
    const models::DenseBlock& b = params.blocks()[i];
    slot->dense_out.push_back(
        {static_cast<uint32_t>(i), std::span<float>(slot->dense.data() + b.offset, b.size)});
    traffic_.dense_pull_bytes += b.size * sizeof(float);
  }
  slot->pulls.push_back(store_->PullDense(slot->dense_out));
  ++traffic_.dense_pulls;
}

Status Trainer::WaitPulls(Slot* slot) {
  Status first;
  for (std::future<Status>& pull : slot->pulls) {
    Status status = pull.get();
    if (first.ok() && !status.ok()) first = status;
  }
  slot->pulls.clear();
  return first;
}

models::ModelInput Trainer::InputFor(const Slot& slot) const {
  const Batch& batch = *slot.batch;
  models::ModelInput in;
  in.batch_size = batch.size;
  in.dense = batch.dense.empty() ? nullptr : batch.dense.data();
  in.labels = batch.labels.data();
  in.fields.reserve(batch.fields.size());
  for (const Batch::Field& f : batch.fields) {
    in.fields.push_back({f.offsets.data(), f.unique_index.data()});
  }
  in.tables.reserve(batch.tables.size());
  for (size_t t = 0; t < batch.tables.size(); ++t) {
    in.tables.push_back({slot.rows[t].data(), static_cast<int>(batch.tables[t].unique_keys.size())});
  }
  return in;
}

Status Trainer::Push(const Slot& slot, const models::ModelOutput& out) {
  const PushOptions push_options = {.step = slot.step,
                                    .keys_unique = true,  // the batch's unique keys
                                    .sync = options_.sync,
                                    .worker_rank = options_.worker_rank,
                                    .num_workers = static_cast<uint32_t>(options_.num_workers)};
  std::vector<std::future<Status>> pushes;
  for (size_t t = 0; t < spec_.tables.size(); ++t) {
    const std::vector<uint64_t>& keys = slot.batch->tables[t].unique_keys;
    // A sync step waits for every worker's push of every table, empty or not.
    if (keys.empty() && !options_.sync) continue;
    pushes.push_back(store_->PushRows(static_cast<uint32_t>(t), keys, spec_.tables[t].dim,
                                      out.row_grads[t].data(), push_options));
    traffic_.sparse_push_bytes += keys.size() * (sizeof(uint64_t) + spec_.tables[t].dim * sizeof(float));
  }
  models::DenseParameters<float>& params = model_->parameters();
  const float* grads = params.grads();
  if (!model_->backend().is_host()) {
    dense_grads_.resize(params.size());
    params.CopyGradsToHost(dense_grads_.data());
    grads = dense_grads_.data();
  }
  if (DenseSyncEvery() == 1) {
    PushDenseBlocks(grads, push_options, &pushes);
  } else {
    // Summed here, pushed once per window. Windows end where (step + prefetch) % k == 0:
    // the dense pull of the next window's first step is issued right after that push
    // (prefetch steps ahead), so it sees every gradient of this worker but the last
    // prefetch + k - 1 steps' (the bound checked against max_staleness).
    dense_sum_.resize(params.size(), 0.0f);
    for (size_t i = 0; i < dense_sum_.size(); ++i) dense_sum_[i] += grads[i];
    ++dense_sum_steps_;
    if ((slot.step + static_cast<uint64_t>(options_.prefetch)) % DenseSyncEvery() == 0) {
      FlushDense(slot.step, &pushes);
    }
  }
  pending_pushes_.push_back(std::move(pushes));
  // Synchronous training and the exact (prefetch-free) mode wait for every push; async
  // training lets max_staleness steps stay unacknowledged.
  const bool exact = options_.sync || options_.prefetch == 0;
  return WaitPushes(exact ? 0 : static_cast<size_t>(options_.max_staleness));
}

void Trainer::PushDenseBlocks(const float* grads, const PushOptions& options,
                              std::vector<std::future<Status>>* pushes) {
  const models::DenseParameters<float>& params = model_->parameters();
  std::vector<DenseBlockIn> blocks;
  blocks.reserve(params.blocks().size());
  for (size_t i = 0; i < params.blocks().size(); ++i) {
    const models::DenseBlock& b = params.blocks()[i];
    blocks.push_back({static_cast<uint32_t>(i), b.name, std::span<const float>(grads + b.offset, b.size)});
    traffic_.dense_push_bytes += b.size * sizeof(float);
  }
  // An async push's values are copied before the store returns, so `grads` may change at
  // once; a sync push reads them until its future is ready, which Push() waits for.
  pushes->push_back(store_->PushDense(blocks, options));
  ++traffic_.dense_pushes;
}

void Trainer::FlushDense(uint64_t step, std::vector<std::future<Status>>* pushes) {
  if (dense_sum_steps_ == 0) return;
  PushDenseBlocks(dense_sum_.data(),
                  {.step = step,
                   .sync = false,
                   .worker_rank = options_.worker_rank,
                   .num_workers = static_cast<uint32_t>(options_.num_workers),
                   .dense_steps = static_cast<uint32_t>(dense_sum_steps_)},
                  pushes);
  std::fill(dense_sum_.begin(), dense_sum_.end(), 0.0f);
  dense_sum_steps_ = 0;
}

Status Trainer::Quiesce() {
  std::vector<std::future<Status>> pushes;
  FlushDense(step_, &pushes);
  if (!pushes.empty()) pending_pushes_.push_back(std::move(pushes));
  return WaitPushes(0);
}

Status Trainer::WaitPushes(size_t keep_at_most) {
  Status first;
  while (pending_pushes_.size() > keep_at_most) {
    for (std::future<Status>& push : pending_pushes_.front()) {
      Status status = push.get();
      if (first.ok() && !status.ok()) first = status;
    }
    pending_pushes_.pop_front();
  }
  return first;
}

Status Trainer::TrainEpoch(BatchSource* source,
                           const std::function<void(const StepReport&)>& on_step) {
  const size_t ahead = options_.sync ? 0 : static_cast<size_t>(options_.prefetch);
  std::deque<std::unique_ptr<Slot>> in_flight;
  bool exhausted = false;
  uint64_t next_step = step_ + 1;
  Status status;

  // Takes the next batch from the source and starts its pulls.
  auto issue = [&]() -> Status {
    MTPS_ASSIGN_OR_RETURN(Batch* batch, source->Next());
    if (batch == nullptr) {
      exhausted = true;
      return Status::OK();
    }
    std::unique_ptr<Slot> slot;
    if (free_slots_.empty()) {
      slot = std::make_unique<Slot>();
    } else {
      slot = std::move(free_slots_.back());
      free_slots_.pop_back();
    }
    slot->batch = batch;
    slot->step = next_step++;
    IssuePulls(slot.get(), /*train=*/true, /*with_dense=*/true);
    in_flight.push_back(std::move(slot));
    return Status::OK();
  };
  auto recycle = [&](std::unique_ptr<Slot> slot) {
    (void)WaitPulls(slot.get());  // a pull in flight still writes into the slot
    source->Release(slot->batch);
    slot->batch = nullptr;
    free_slots_.push_back(std::move(slot));
  };

  while (status.ok()) {
    while (!exhausted && in_flight.size() <= ahead) {
      status = issue();
      if (!status.ok()) break;
    }
    if (!status.ok() || in_flight.empty()) break;
    std::unique_ptr<Slot> slot = std::move(in_flight.front());
    in_flight.pop_front();

    status = WaitPulls(slot.get());
    if (status.ok()) {
      if (slot->dense_pulled) model_->parameters().CopyValuesFromHost(slot->dense.data());
      status = model_->Train(InputFor(*slot), slot->step, &out_);
      if (!status.ok()) {
        status = status.WithContext("step " + std::to_string(slot->step) + " (epoch " +
                                    std::to_string(slot->batch->epoch) + ", record " +
                                    std::to_string(slot->batch->first_record) + ")");
      }
    }
    if (status.ok()) status = Push(*slot, out_);
    if (status.ok()) {
      step_ = slot->step;
      if (on_step) {
        on_step({.step = step_,
                 .batch_size = slot->batch->size,
                 .data_position = slot->batch->first_record + static_cast<uint64_t>(slot->batch->size),
                 .task_loss = out_.task_loss});
      }
    }
    recycle(std::move(slot));
  }
  while (!in_flight.empty()) {
    recycle(std::move(in_flight.front()));
    in_flight.pop_front();
  }
  // The epoch's last partial window is pushed too: evaluation and the epoch barrier see
  // every step. (After a failed step it is dropped with the step.)
  Status pushed = status.ok() ? Quiesce() : WaitPushes(0);
  return status.ok() ? pushed : status;
}

StatusOr<EvalResult> Trainer::Evaluate(BatchSource* source) {
  MTPS_RETURN_IF_ERROR(Quiesce());
  std::vector<float> dense;
  MTPS_RETURN_IF_ERROR(PullDenseValues(&dense));
  model_->parameters().CopyValuesFromHost(dense.data());

  const int tasks = static_cast<int>(spec_.tasks.size());
  std::vector<std::vector<float>> predictions(tasks), labels(tasks);
  std::vector<double> loss_sum(tasks, 0.0);
  EvalResult result;
  Slot slot;
  while (true) {
    MTPS_ASSIGN_OR_RETURN(Batch* batch, source->Next());
    if (batch == nullptr) break;
    slot.batch = batch;
    slot.step = step_;
    IssuePulls(&slot, /*train=*/false, /*with_dense=*/false);
    Status status = WaitPulls(&slot);
    if (status.ok()) status = model_->Evaluate(InputFor(slot), &out_);
    if (status.ok()) {
      for (int t = 0; t < tasks; ++t) {
        predictions[t].insert(predictions[t].end(), out_.predictions[t].begin(),
                              out_.predictions[t].end());
        for (int r = 0; r < batch->size; ++r) labels[t].push_back(batch->labels[r * tasks + t]);
        loss_sum[t] += out_.task_loss[t] * batch->size;
      }
      result.samples += batch->size;
    }
    source->Release(batch);
    MTPS_RETURN_IF_ERROR(status);
  }
  for (int t = 0; t < tasks; ++t) {
    TaskEval eval;
    eval.name = spec_.tasks[t].name;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    eval.loss = result.samples > 0 ? loss_sum[t] / result.samples : nan;
    if (spec_.tasks[t].loss == TaskSpec::Loss::kBce) {
      StatusOr<double> auc = models::ExactAuc(predictions[t], labels[t]);
      eval.auc = auc.ok() ? *auc : nan;
      StatusOr<double> logloss = models::LogLoss(predictions[t], labels[t]);
      eval.logloss = logloss.ok() ? *logloss : nan;
      eval.mse = nan;
    } else {
      StatusOr<double> mse = models::MeanSquaredError(predictions[t], labels[t]);
      eval.mse = mse.ok() ? *mse : nan;
      eval.auc = eval.logloss = nan;
    }
    result.tasks.push_back(eval);
  }
  return result;
}

}  // namespace mtps
