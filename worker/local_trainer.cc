// LocalTrainer: the Trainer over in-process parameters and the job's whole data set.
#include "worker/local_trainer.h"

#include <chrono>

#include "worker/epoch_loss.h"

namespace mtps {

StatusOr<std::unique_ptr<LocalTrainer>> LocalTrainer::Create(const JobSpec& spec,
                                                             const LocalTrainerOptions& options) {
  std::unique_ptr<LocalTrainer> local(new LocalTrainer());
  local->spec_ = spec;
  local->options_ = options;
  local->best_ = BestEpoch(spec);
  MTPS_ASSIGN_OR_RETURN(local->data_, TrainingData::Open(spec));
  local->store_ = std::make_unique<LocalParameterStore>(spec);
  MTPS_RETURN_IF_ERROR(local->store_->status());
  // Exact sequential SGD: no prefetch, every push applied before the next pull.
  MTPS_ASSIGN_OR_RETURN(local->trainer_,
                        Trainer::Create(spec, local->store_.get(),
                                        {.device = options.device,
                                         .cpu_threads = options.cpu_threads,
                                         .sync = true}));
  MTPS_RETURN_IF_ERROR(local->trainer_->InitParameters());
  return local;
}

Status LocalTrainer::TrainEpoch(int epoch) {
  const auto start = std::chrono::steady_clock::now();
  MTPS_ASSIGN_OR_RETURN(auto source, data_->TrainEpoch(epoch, 0, 1));
  EpochLoss loss;
  Status trained = trainer_->TrainEpoch(source.get(), [&](const StepReport& report) {
    samples_ += report.batch_size;
    loss.Add(report);
    if (options_.on_step) options_.on_step(report);
  });
  bad_records_.Add(source->counts());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  train_seconds_ += seconds;
  epoch_stats_.push_back({.samples = loss.samples(), .seconds = seconds, .train_loss = loss.Mean()});
  MTPS_RETURN_IF_ERROR(trained);
  return CheckBadRecords(spec_.data, bad_records_, "the local run");
}

StatusOr<EvalResult> LocalTrainer::Evaluate() {
  MTPS_ASSIGN_OR_RETURN(auto source, data_->Eval(0, 1));
  return trainer_->Evaluate(source.get());
}

StatusOr<EvalResult> LocalTrainer::Run(
    const std::function<void(int, const EvalResult&)>& on_epoch) {
  best_ = BestEpoch(spec_);
  std::unique_ptr<LocalParameterStore::Snapshot> best_state;  // when a later epoch may follow
  int last_epoch = -1;
  for (int epoch = 0; epoch < spec_.training.epochs; ++epoch) {
    MTPS_RETURN_IF_ERROR(TrainEpoch(epoch).WithContext("epoch " + std::to_string(epoch)));
    last_epoch = epoch;
    epochs_run_ = epoch + 1;
    if (data_->eval_files().empty()) continue;
    MTPS_ASSIGN_OR_RETURN(EvalResult eval, Evaluate());
    if (on_epoch) on_epoch(epoch, eval);
    const BestEpoch::Verdict verdict = best_.Observe(epoch, eval);
    if (verdict.stop) break;
    if (verdict.improved) {
      best_state.reset();  // the old copy first: at most one extra model in memory
      if (epoch + 1 < spec_.training.epochs) {
        MTPS_ASSIGN_OR_RETURN(best_state, store_->TakeSnapshot());
      }
    }
  }
  if (best_.best_epoch() < 0) return EvalResult{};
  if (best_.best_epoch() != last_epoch) {
    MTPS_RETURN_IF_ERROR(store_->Restore(std::move(best_state)).WithContext("restoring the best epoch"));
  }
  return best_.best();
}

}  // namespace mtps
