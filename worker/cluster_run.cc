// RunWorker: one worker of a cluster — register, train this worker's shard against the
// parameter servers epoch by epoch, let rank 0 evaluate the eval split after each epoch,
// report progress to the scheduler, and leave when the scheduler says the job ended.
#include <glog/logging.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "protocol/http_server.h"
#include "protocol/metrics.h"
#include "protocol/process_metrics.h"
#include "ps/client.h"
#include "protocol/scheduler_client.h"
#include "worker/bad_records.h"
#include "worker/best_epoch.h"
#include "worker/epoch_loss.h"
#include "worker/failover_parameter_store.h"
#include "worker/trainer.h"
#include "worker/training_data.h"
#include "worker/worker_run.h"

namespace mtps {
namespace {

// Ends an epoch early, with the scheduler's reason, once the job was told to stop: a
// worker never trains on after a peer died. `max_batches` >= 0 ends it after that many
// (a sync replacement's rest of an epoch).
class StoppableSource : public BatchSource {
 public:
  StoppableSource(BatchSource* source, const scheduler::SchedulerClient* control,
                  int64_t max_batches = -1)
      : source_(source), control_(control), left_(max_batches) {}
  StatusOr<Batch*> Next() override {
    if (std::optional<scheduler::ShutdownNotice> notice = control_->shutdown_notice()) {
      return Cancelled("the scheduler ended the job: " + notice->reason);
    }
    if (left_ == 0) return static_cast<Batch*>(nullptr);
    if (left_ > 0) --left_;
    return source_->Next();
  }
  void Release(Batch* batch) override { source_->Release(batch); }

 private:
  BatchSource* source_;
  const scheduler::SchedulerClient* control_;
  int64_t left_;
};

// How long a sync push may wait for its step to complete: the other workers' pushes,
// and a lost worker's replacement. Not the bound that matters: the scheduler fails the job
// when a lost worker is not replaced within its recovery timeout, and the shutdown notice
// ends the wait at once (FailoverParameterStore::Stop) with its reason, naming the worker.
constexpr std::chrono::minutes kSyncStepTimeout{15};

std::vector<scheduler::TaskReport> TaskReports(const JobSpec& spec,
                                               const std::vector<double>& loss) {
  std::vector<scheduler::TaskReport> tasks;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    tasks.push_back({.name = spec.tasks[t].name, .loss = t < loss.size() ? loss[t] : 0.0});
  }
  return tasks;
}

// The worker's own metrics on /metrics.
struct WorkerMetrics {
  explicit WorkerMetrics(MetricsRegistry* registry, const JobSpec& spec)
      : steps(registry->AddCounter("mtps_worker_steps_total", "Training steps done.")),
        samples(registry->AddCounter("mtps_worker_samples_total", "Training samples done.")),
        step_seconds(registry->AddHistogram(
            "mtps_worker_step_seconds", "Wall time of one training step.",
            {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5})),
        checkpoint_pause_seconds(registry->AddHistogram(
            "mtps_worker_checkpoint_pause_seconds",
            "Time training stood still for a checkpoint's consistent cut: from the start of "
            "the quiesce (this worker's pushes applied) to the scheduler's release.",
            {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60})) {
    const char* kHelp = "Payload bytes of training pulls and pushes (keys and values, no framing).";
    for (const char* kind : {"sparse", "dense"}) {
      for (const char* op : {"pull", "push"}) {
        payload_bytes.push_back(registry->AddCounter("mtps_worker_payload_bytes_total", kHelp,
                                                     {{"kind", kind}, {"op", op}}));
      }
    }
    for (const TaskSpec& task : spec.tasks) {
      task_loss.push_back(registry->AddGauge("mtps_worker_task_loss",
                                             "Training loss of the latest step, per task.",
                                             {{"task", task.name}}));
      task_auc.push_back(registry->AddGauge("mtps_worker_eval_auc",
                                            "AUC of the latest evaluation, per task.",
                                            {{"task", task.name}}));
    }
  }
  Counter* steps;
  Counter* samples;
  Histogram* step_seconds;
  Histogram* checkpoint_pause_seconds;
  std::vector<Counter*> payload_bytes;  // sparse pull, sparse push, dense pull, dense push
  std::vector<Gauge*> task_loss;
  std::vector<Gauge*> task_auc;
};

// Adds what the trainer moved since `*seen` to the payload counters.
void CountTraffic(const TrafficCounters& now, TrafficCounters* seen, WorkerMetrics* metrics) {
  const uint64_t deltas[] = {now.sparse_pull_bytes - seen->sparse_pull_bytes,
                             now.sparse_push_bytes - seen->sparse_push_bytes,
                             now.dense_pull_bytes - seen->dense_pull_bytes,
                             now.dense_push_bytes - seen->dense_push_bytes};
  for (size_t i = 0; i < 4; ++i) metrics->payload_bytes[i]->Increment(deltas[i]);
  *seen = now;
}
// The payload bytes of one step on average (the figure training.dense_sync_every cuts).
std::string TrafficPerStep(const TrafficCounters& t, uint64_t steps) {
  const double n = static_cast<double>(std::max<uint64_t>(steps, 1));
  char text[256];
  std::snprintf(text, sizeof(text),
                "payload bytes per step: sparse pull %.0f push %.0f, dense pull %.0f push %.0f "
                "(%llu dense pulls, %llu dense pushes in %llu steps)",
                t.sparse_pull_bytes / n, t.sparse_push_bytes / n, t.dense_pull_bytes / n,
                t.dense_push_bytes / n, static_cast<unsigned long long>(t.dense_pulls),
                static_cast<unsigned long long>(t.dense_pushes), static_cast<unsigned long long>(steps));
  return text;
}

// An "eval" progress report of `epoch`'s evaluation.
scheduler::ProgressReport EvalReport(int epoch, const EvalResult& eval, uint64_t step, uint64_t samples,
                                     double train_seconds, uint64_t bad_records) {
  scheduler::ProgressReport report{.phase = "eval",
                                   .epoch = static_cast<uint32_t>(epoch),
                                   .step = step,
                                   .samples = samples,
                                   .samples_per_sec = samples / std::max(train_seconds, 1e-9),
                                   .train_seconds = train_seconds,
                                   .bad_records = bad_records};
  for (const TaskEval& task : eval.tasks) {
    report.tasks.push_back({.name = task.name, .loss = task.loss, .auc = task.auc,
                            .logloss = task.logloss, .mse = task.mse});
  }
  return report;
}

// The scheduler's record of the epochs evaluated so far, by epoch.
std::map<int, EvalResult> EvaluationsOf(const std::vector<scheduler::EpochEvaluation>& evaluations) {
  std::map<int, EvalResult> by_epoch;
  for (const scheduler::EpochEvaluation& e : evaluations) {
    EvalResult& eval = by_epoch[static_cast<int>(e.epoch)];
    for (const scheduler::TaskReport& task : e.tasks) {
      eval.tasks.push_back({.name = task.name, .auc = task.auc, .logloss = task.logloss, .mse = task.mse});
    }
  }
  return by_epoch;
}

}  // namespace

Status RunWorker(const JobSpec& spec, const WorkerRunOptions& options) {
  // Block scope: mtps::SteadyClock (base/clock.h, through the scheduler's client) is another.
  using SteadyClock = std::chrono::steady_clock;
  if (options.scheduler.empty()) {
    return InvalidArgument("--scheduler is required (or --local to train without a cluster)");
  }
  MetricsRegistry registry;
  ExportProcessMetrics(&registry);
  WorkerMetrics metrics(&registry, spec);
  HttpServer http(&registry);
  MTPS_ASSIGN_OR_RETURN(int http_port, http.Start(options.host, options.http_port));

  scheduler::SchedulerClientOptions control_options;
  control_options.scheduler = options.scheduler;
  control_options.role = proto::Role::WORKER;
  control_options.control_bind_host = options.host;
  control_options.control_host = options.advertise_host;
  control_options.http_address = options.advertise_host + ":" + std::to_string(http_port);
  control_options.spec_hash = spec.hash;
  control_options.requested_rank = options.rank;
  MTPS_ASSIGN_OR_RETURN(auto control, scheduler::SchedulerClient::Create(control_options));
  MTPS_ASSIGN_OR_RETURN(scheduler::ClusterInfo cluster, control->Register());
  const int rank = cluster.rank;
  const int num_workers = static_cast<int>(cluster.workers.size());
  LOG(INFO) << "worker " << rank << " of " << num_workers << ", " << cluster.servers.size()
            << " servers, device " << options.device;
  http.SetHealthCheck([&control]() -> Status {
    if (auto notice = control->shutdown_notice(); notice && notice->failed) {
      return Unavailable("job failed: " + notice->reason);
    }
    return Status::OK();
  });

  // A permanent error from here on is reported to the scheduler (phase "failed"), so the job
  // fails at once with this worker's reason instead of after its heartbeat timeout.
  std::unique_ptr<FailoverParameterStore> store_owner;
  std::unique_ptr<Trainer> trainer;
  Status result = [&]() -> Status {
  std::vector<std::string> server_addresses;
  for (const scheduler::NodeAddress& server : cluster.servers) server_addresses.push_back(server.address);
  // Survives a server's loss: requests wait for its replacement, whose address comes with
  // the next cluster view.
  MTPS_ASSIGN_OR_RETURN(store_owner,
                        FailoverParameterStore::Create(
                            server_addresses,
                            // Servers refuse a message without their job id (the spec hash).
                            // Every request carries this process's generation: once it is
                            // declared lost and replaced, servers refuse it (fencing).
                            {.client = {.rank = rank,
                                        .transport = {.job_id = spec.hash,
                                                      .generation = cluster.generation},
                                        .timeout = spec.training.mode == TrainingSpec::Mode::kSync
                                                       ? std::chrono::milliseconds(kSyncStepTimeout)
                                                       : ps::ClientOptions{}.timeout}}));
  FailoverParameterStore& store = *store_owner;
  control->OnViewChange([&store](const scheduler::ClusterInfo& view) {
    std::vector<std::string> addresses;
    for (const scheduler::NodeAddress& server : view.servers) addresses.push_back(server.address);
    store.UpdateView(addresses);
  });
  control->OnShutdown([&store](const scheduler::ShutdownNotice& notice) {
    store.Stop(Cancelled("the scheduler ended the job: " + notice.reason));
  });
  MTPS_ASSIGN_OR_RETURN(auto data, TrainingData::Open(spec));

  const bool sync = spec.training.mode == TrainingSpec::Mode::kSync;
  TrainerOptions trainer_options{.device = options.device,
                                 .cpu_threads = options.cpu_threads,
                                 .worker_rank = rank,
                                 .num_workers = num_workers,
                                 .sync = sync,
                                 .prefetch = sync ? 0 : spec.training.prefetch,
                                 .max_staleness = spec.training.max_staleness};
  MTPS_ASSIGN_OR_RETURN(trainer, Trainer::Create(spec, &store, trainer_options));
  MTPS_RETURN_IF_ERROR(trainer->InitParameters());
  // A replacement joins a running job: the others passed this barrier long ago.
  if (!cluster.rejoined) {
    MTPS_RETURN_IF_ERROR(control->Barrier("parameters-initialized", num_workers));
  }

  int64_t max_batches = 0;  // sync: every worker takes the same number of steps
  if (sync && num_workers > 1) {
    MTPS_ASSIGN_OR_RETURN(max_batches, data->SyncStepsPerEpoch(num_workers));
  }

  const uint64_t train_records = data->train_records();  // for the scheduler's ETA
  // A replacement of a lost worker goes on from the data position that the last committed
  // checkpoint recorded: no record past it is read twice, none is skipped.
  int first_epoch = 0;
  uint64_t skip_records = 0;
  int64_t first_epoch_batches = -1;  // -1: as many as the epoch has
  if (cluster.resume && sync && max_batches > 0) {
    // Sync: the scheduler sends the newest step a worker finished (applied on every
    // server). Every worker takes max_batches full batches per epoch, so that step says
    // where this rank's stream stands: no record of it is read twice, none skipped.
    const uint64_t finished = cluster.resume_step;
    first_epoch = finished == 0 ? 0 : static_cast<int>((finished - 1) / max_batches);
    const int64_t taken = static_cast<int64_t>(finished) - int64_t{first_epoch} * max_batches;
    skip_records = static_cast<uint64_t>(taken) * static_cast<uint64_t>(spec.training.batch_size);
    first_epoch_batches = max_batches - taken;
    trainer->set_step(finished);
    LOG(WARNING) << "worker " << rank << " resumes at epoch " << first_epoch << " record "
                 << skip_records << " (after sync step " << finished << ", " << first_epoch_batches
                 << " steps left in the epoch)";
  } else if (cluster.resume) {
    first_epoch = static_cast<int>(cluster.resume_epoch);
    skip_records = cluster.resume_records;
    trainer->set_step(cluster.resume_step);
    LOG(WARNING) << "worker " << rank << " resumes at epoch " << first_epoch << " record "
                 << skip_records << " (step " << cluster.resume_step << ")";
  }

  uint64_t samples = 0;
  double train_seconds = 0;
  const uint64_t first_step = trainer->step();
  TrafficCounters traffic_counted;
  BadRecordTally bad_records;
  scheduler::ProgressReport last_eval{.phase = "eval"};
  uint64_t last_pause = 0;
  // A replacement takes over its peers' early-stopping record: the epochs the job evaluated
  // before it started count towards patience and the best epoch as they did for the others,
  // so that all reach the same verdict and stop together.
  const std::map<int, EvalResult> evaluated_before = EvaluationsOf(cluster.evaluations);
  BestEpoch best(spec);
  int last_epoch = first_epoch - 1;
  bool stopped = false;
  for (const auto& [epoch, eval] : evaluated_before) {
    if (epoch >= first_epoch || stopped) break;
    stopped = best.Observe(epoch, eval).stop;
    last_epoch = epoch;
  }
  LOG_IF(WARNING, !evaluated_before.empty())
      << "worker " << rank << " takes the job's evaluations of " << evaluated_before.size()
      << " epochs before its start: best epoch so far " << best.best_epoch() << " ("
      << best.MetricName() << " " << best.best_metric() << ")"
      << (stopped ? "; early stopping had already ended training" : "");
  for (int epoch = first_epoch; !stopped && epoch < spec.training.epochs; ++epoch) {
    MTPS_ASSIGN_OR_RETURN(auto epoch_source,
                          data->TrainEpoch(epoch, rank, num_workers, max_batches,
                                           epoch == first_epoch ? skip_records : 0));
    uint64_t position = epoch == first_epoch ? skip_records : 0;
    EpochLoss epoch_loss;
    double epoch_seconds = -1;  // set once the epoch is trained
    // Tells the scheduler where this worker's stream stands (what a checkpoint records);
    // once the epoch is trained, also what it was (summary.json's per-epoch history).
    auto report_position = [&](uint64_t step) {
      scheduler::ProgressReport here{.phase = "train",
                                     .epoch = static_cast<uint32_t>(epoch),
                                     .step = step,
                                     .samples = samples,
                                     .train_seconds = train_seconds,
                                     .data_position = position,
                                     .bad_records = bad_records.bad_records,
                                     .epoch_records = train_records};
      if (epoch_seconds >= 0) {
        here.epoch_end = true;
        here.epoch_samples = epoch_loss.samples();
        here.epoch_seconds = epoch_seconds;
        here.tasks = TaskReports(spec, epoch_loss.Mean());
      }
      return control->ReportProgress(here);
    };
    StoppableSource source(epoch_source.get(), control.get(),
                           epoch == first_epoch ? first_epoch_batches : -1);
    const SteadyClock::time_point epoch_start = SteadyClock::now();
    SteadyClock::time_point step_start = epoch_start;
    Status trained = trainer->TrainEpoch(&source, [&](const StepReport& report) {
      const SteadyClock::time_point now = SteadyClock::now();
      metrics.step_seconds->Observe(std::chrono::duration<double>(now - step_start).count());
      step_start = now;
      metrics.steps->Increment();
      metrics.samples->Increment(report.batch_size);
      CountTraffic(trainer->traffic(), &traffic_counted, &metrics);
      for (size_t t = 0; t < report.task_loss.size(); ++t) metrics.task_loss[t]->Set(report.task_loss[t]);
      samples += report.batch_size;
      epoch_loss.Add(report);
      position = report.data_position;
      control->SetState(proto::NodeState::RUNNING, report.step);
      if (const uint64_t pause = control->checkpoint_pause(); pause != 0 && pause != last_pause) {
        // The scheduler cuts a checkpoint: stop at this step boundary with every push
        // applied, say where the stream stands, and wait while the servers write.
        last_pause = pause;
        const SteadyClock::time_point pause_start = SteadyClock::now();
        Status paused = trainer->Quiesce();
        if (paused.ok()) paused = report_position(report.step);
        if (paused.ok()) paused = control->Barrier("checkpoint-" + std::to_string(pause), 0);
        LOG_IF(WARNING, !paused.ok()) << "checkpoint pause " << pause << ": " << paused;
        metrics.checkpoint_pause_seconds->Observe(
            std::chrono::duration<double>(SteadyClock::now() - pause_start).count());
      }
      if (options.log_every <= 0 || report.step % options.log_every != 0) return;
      const double seconds =
          train_seconds + std::chrono::duration<double>(now - epoch_start).count();
      scheduler::ProgressReport progress{.phase = "train",
                                         .epoch = static_cast<uint32_t>(epoch),
                                         .step = report.step,
                                         .samples = samples,
                                         .samples_per_sec = seconds > 0 ? samples / seconds : 0,
                                         .train_seconds = seconds,
                                         .data_position = position,
                                         .bad_records = bad_records.bad_records,
                                         .tasks = TaskReports(spec, report.task_loss),
                                         .epoch_records = train_records};
      std::string losses;
      for (const scheduler::TaskReport& task : progress.tasks) {
        char text[64];
        std::snprintf(text, sizeof(text), " %s loss %.4f", task.name.c_str(), task.loss);
        losses += text;
      }
      LOG(INFO) << "epoch " << epoch << " step " << report.step << losses << " | "
                << static_cast<int64_t>(progress.samples_per_sec) << " samples/s";
      Status reported = control->ReportProgress(progress);
      if (!reported.ok()) LOG(WARNING) << "progress report failed: " << reported;
    });
    epoch_seconds = std::chrono::duration<double>(SteadyClock::now() - epoch_start).count();
    train_seconds += epoch_seconds;
    bad_records.Add(epoch_source->counts());
    MTPS_RETURN_IF_ERROR(trained.WithContext("epoch " + std::to_string(epoch)));
    MTPS_RETURN_IF_ERROR(CheckBadRecords(spec.data, bad_records, "worker " + std::to_string(rank)));
    LOG(INFO) << "epoch " << epoch << " trained: " << samples << " samples, step "
              << trainer->step() << ", " << samples / std::max(train_seconds, 1e-9)
              << " samples/s; " << TrafficPerStep(trainer->traffic(), trainer->step() - first_step);

    // Where the stream stands while this worker waits at the epoch's barriers.
    if (Status s = report_position(trainer->step()); !s.ok()) LOG(WARNING) << "progress report failed: " << s;
    // Everyone finishes the epoch's pushes before the eval split is scored, so the
    // evaluation sees the whole epoch's training.
    MTPS_RETURN_IF_ERROR(control->Barrier("epoch-" + std::to_string(epoch) + "-trained", num_workers));
    BestEpoch::Verdict verdict;
    if (!data->eval_files().empty()) {
      // Every worker scores the whole eval split. It costs no wall time (the others would
      // wait for rank 0 at the next barrier) and saves a message: nobody pushes between the
      // two barriers, so all see the same parameters, reach the same early-stopping verdict
      // and stop together. Rank 0 reports the metrics.
      EvalResult eval;
      if (auto before = evaluated_before.find(epoch); before != evaluated_before.end()) {
        // The others scored this epoch before this process started (it went through the
        // epoch's rest again from the checkpoint's position): their verdict is the one to share.
        eval = before->second;
        LOG(INFO) << "epoch " << epoch << " was evaluated before this worker started: it takes that evaluation";
      } else {
        MTPS_ASSIGN_OR_RETURN(auto eval_source, data->Eval(0, 1));
        MTPS_ASSIGN_OR_RETURN(eval, trainer->Evaluate(eval_source.get()));
      }
      verdict = best.Observe(epoch, eval);
      if (rank == 0) {
        last_eval = EvalReport(epoch, eval, trainer->step(), samples, train_seconds, bad_records.bad_records);
        last_eval.best_so_far = verdict.improved;
        for (size_t t = 0; t < eval.tasks.size(); ++t) {
          const TaskEval& task = eval.tasks[t];
          if (std::isfinite(task.auc)) metrics.task_auc[t]->Set(task.auc);
          LOG(INFO) << "epoch " << epoch << " eval " << task.name << ": auc " << task.auc
                    << " logloss " << task.logloss;
        }
        MTPS_RETURN_IF_ERROR(control->ReportProgress(last_eval));
      }
    }
    MTPS_RETURN_IF_ERROR(control->Barrier("epoch-" + std::to_string(epoch) + "-evaluated", num_workers));
    last_epoch = epoch;
    stopped = verdict.stop;
    if (stopped) {
      LOG(INFO) << "early stopping after epoch " << epoch << ": no " << best.MetricName() << " gain over "
                << spec.training.early_stopping.min_delta << " for " << spec.training.early_stopping.patience
                << " epochs";
      break;
    }
  }
  if (rank == 0 && best.best_epoch() >= 0) {
    LOG(INFO) << "best epoch " << best.best_epoch() << " (" << best.MetricName() << " " << best.best_metric()
              << ") of " << last_epoch + 1 << " trained";
    if (best.best_epoch() != last_epoch) {
      // The run reports its best epoch: the scheduler's summary takes the latest evaluation.
      last_eval = EvalReport(best.best_epoch(), best.best(), trainer->step(), samples, train_seconds,
                             bad_records.bad_records);
      MTPS_RETURN_IF_ERROR(control->ReportProgress(last_eval));
    }
  }

  scheduler::ProgressReport done = last_eval;
  done.phase = "done";
  done.epoch = static_cast<uint32_t>(std::max(0, last_epoch));
  done.step = trainer->step();
  done.samples = samples;
  done.train_seconds = train_seconds;
  done.samples_per_sec = samples / std::max(train_seconds, 1e-9);
  done.bad_records = bad_records.bad_records;
  if (rank != 0) done.tasks.clear();
  return control->ReportProgress(done);
  }();
  // Stops the heartbeat thread before the store its callbacks reach can go.
  auto stop_control = [&] {
    control->Stop();
    control->OnViewChange(nullptr);
    control->OnShutdown(nullptr);
  };
  if (!result.ok()) {
    if (result.retryable() && !control->shutdown_notice()) {
      // A lost server or a timeout is this worker's trouble, not the job's: it exits for a
      // restart under its rank (local.sh, Kubernetes), and the scheduler, which sees its
      // heartbeats stop, waits for the replacement instead of failing everyone.
      LOG(ERROR) << "worker " << rank << " exits for a restart: " << result;
    } else if (!control->shutdown_notice()) {
      scheduler::ProgressReport failed{.phase = "failed", .reason = result.ToString()};
      Status reported = control->ReportProgress(failed);
      LOG_IF(WARNING, !reported.ok()) << "could not tell the scheduler of the failure: " << reported;
    }
    // Ended by the scheduler: the notice, not the interrupted step, says how (its exit status).
    std::optional<scheduler::ShutdownNotice> notice = control->shutdown_notice();
    stop_control();
    http.Stop();
    return notice ? notice->Outcome() : result;
  }
  control->SetState(proto::NodeState::STOPPING, trainer->step());

  std::optional<scheduler::ShutdownNotice> notice = control->WaitForShutdown(std::chrono::minutes(10));
  stop_control();
  http.Stop();
  if (!notice) return DeadlineExceeded("no shutdown from the scheduler within 10 minutes");
  if (notice->failed) return notice->Outcome();
  LOG(INFO) << "worker " << rank << " done: " << notice->reason;
  return Status::OK();
}

}  // namespace mtps
