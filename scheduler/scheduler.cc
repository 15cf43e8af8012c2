// Scheduler: the request handlers (register, heartbeat, barrier, progress) and the main
// loop that checks deadlines, takes checkpoints and ends the job.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>

#include <glog/logging.h>

namespace mtps::scheduler {

namespace {

using Kind = proto::Envelope::Body;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

std::string SecondsText(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", Seconds(d));
  return buf;
}

NodeKey SenderOf(const IncomingMessage& request) {
  auto sender = request.envelope().getSender();
  return NodeKey{sender.getRole(), sender.getRank()};
}

std::string Describe(NodeKey key) {
  return std::string(RoleName(key.role)) + " " + std::to_string(key.rank);
}

}  // namespace

struct Scheduler::PendingRegistration {
  Responder responder;
};

Scheduler::Scheduler(SchedulerOptions options, const Clock* clock, ps::CheckpointFileSystem* fs,
                     MetricsRegistry* metrics)
    : options_(std::move(options)),
      clock_(clock),
      fs_(fs),
      rpc_(TransportOptions{}, proto::Role::SCHEDULER, 0),
      detector_(clock, options_.heartbeat_timeout),
      barriers_(clock, options_.barrier_timeout, options_.num_servers + options_.num_workers),
      progress_(options_.num_workers,
                [&] {
                  std::vector<std::string> names;
                  for (const TaskSpec& t : options_.spec.tasks) names.push_back(t.name);
                  return names;
                }()),
      checkpoints_(fs, CheckpointOptions{.root = options_.spec.checkpoint.dir,
                                         .keep = options_.spec.checkpoint.keep,
                                         .ack_timeout = options_.checkpoint_timeout}),
      membership_(options_.num_servers, options_.num_workers, options_.spec.hash) {
  for (const TaskSpec& t : options_.spec.tasks) task_names_.push_back(t.name);
  metrics_.registered_servers = metrics->AddGauge(
      "mtps_scheduler_registered_nodes", "Nodes registered, by role.", {{"role", "server"}});
  metrics_.registered_workers = metrics->AddGauge(
      "mtps_scheduler_registered_nodes", "Nodes registered, by role.", {{"role", "worker"}});
  metrics_.phase = metrics->AddGauge(
      "mtps_scheduler_job_phase", "0 forming, 1 running, 2 finishing, 3 done, 4 failed.");
  metrics_.heartbeats = metrics->AddCounter("mtps_scheduler_heartbeats_total", "Heartbeats received.");
  metrics_.barriers = metrics->AddCounter("mtps_scheduler_barrier_arrivals_total",
                                          "Arrivals at barriers.");
  metrics_.progress_reports = metrics->AddCounter("mtps_scheduler_progress_reports_total",
                                                  "Progress reports received from workers.");
  metrics_.refused = metrics->AddCounter("mtps_scheduler_refused_requests_total",
                                         "Requests answered with an error.");
  metrics_.dead_nodes = metrics->AddCounter("mtps_scheduler_dead_nodes_total",
                                            "Nodes declared dead by the failure detector.");
  metrics_.checkpoints_ok = metrics->AddCounter("mtps_scheduler_checkpoints_total",
                                                "Cluster checkpoints, by result.", {{"result", "ok"}});
  metrics_.checkpoints_failed = metrics->AddCounter(
      "mtps_scheduler_checkpoints_total", "Cluster checkpoints, by result.", {{"result", "failed"}});
  metrics_.samples = metrics->AddGauge("mtps_job_samples", "Training samples over all workers.");
  metrics_.samples_per_sec = metrics->AddGauge("mtps_job_samples_per_second",
                                               "Training throughput over all workers.");
  for (const std::string& task : task_names_) {
    metrics_.train_loss[task] = metrics->AddGauge(
        "mtps_job_train_loss", "Recent training loss, mean over workers.", {{"task", task}});
  }

  rpc_.Handle(Kind::REGISTER, [this](IncomingMessage& m, Responder r) { HandleRegister(m, std::move(r)); });
  rpc_.Handle(Kind::HEARTBEAT, [this](IncomingMessage& m, Responder r) { HandleHeartbeat(m, std::move(r)); });
  rpc_.Handle(Kind::BARRIER, [this](IncomingMessage& m, Responder r) { HandleBarrier(m, std::move(r)); });
  rpc_.Handle(Kind::PROGRESS, [this](IncomingMessage& m, Responder r) { HandleProgress(m, std::move(r)); });
}

Scheduler::~Scheduler() {
  barriers_.CancelAll(Cancelled("the scheduler is exiting"));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, pending] : pending_) pending->responder.SendError(Cancelled("the scheduler is exiting"));
    pending_.clear();
  }
  rpc_.Stop();
}

StatusOr<int> Scheduler::Start() {
  MTPS_ASSIGN_OR_RETURN(int port, rpc_.Bind(options_.endpoint));
  MTPS_RETURN_IF_ERROR(rpc_.Start());
  started_at_ = clock_->Now();
  LOG(INFO) << "scheduler: job '" << options_.spec.name << "' spec hash "
            << FormatSpecHash(options_.spec.hash) << ", waiting for " << options_.num_servers
            << " servers and " << options_.num_workers << " workers on port " << port;
  return port;
}

// ---- handlers ----

void Scheduler::HandleRegister(IncomingMessage& request, Responder responder) {
  auto reg = request.envelope().getBody().getRegister();
  NodeRecord node;
  node.role = reg.getRole();
  node.address = reg.getAddress();
  node.http_address = reg.getHttpAddress();
  node.hostname = reg.getHostname();
  node.pid = reg.getPid();
  node.spec_hash = reg.getSpecHash();
  node.requested_rank = reg.getRequestedRank();

  std::lock_guard<std::mutex> lock(mutex_);
  if (phase_ != Phase::kForming) {
    // A node whose registration reply was lost asks again: same answer.
    if (node.role == proto::Role::SERVER || node.role == proto::Role::WORKER) {
      for (const NodeRecord& held : membership_.nodes(node.role)) {
        if (held.address != node.address || node.spec_hash != membership_.spec_hash()) continue;
        auto reply = responder.NewReply();
        auto body = reply->body().initRegisterReply();
        body.setRank(held.rank);
        membership_.FillView(body.initView());
        responder.Send(std::move(reply));
        return;
      }
    }
    metrics_.refused->Increment();
    if (phase_ == Phase::kFailed) return responder.SendError(failure_);
    responder.SendError(FailedPrecondition(
        "refused " + std::string(RoleName(node.role)) + " at " + node.address +
        ": the cluster is already formed (" + membership_.CountSummary() + ")"));
    return;
  }
  StatusOr<int> rank = membership_.Register(node);
  if (!rank.ok()) {
    metrics_.refused->Increment();
    LOG(WARNING) << "scheduler: registration refused: " << rank.status();
    responder.SendError(rank.status());
    return;
  }
  LOG(INFO) << "scheduler: " << RoleName(node.role) << " " << *rank << " registered from "
            << node.address << " (" << node.hostname << " pid " << node.pid << "); "
            << membership_.CountSummary();
  const NodeKey key{node.role, *rank};
  auto& slot = pending_[key];
  if (slot) slot->responder.SendError(Cancelled("superseded by a repeated registration"));
  slot = std::make_unique<PendingRegistration>(PendingRegistration{std::move(responder)});
  (node.role == proto::Role::SERVER ? metrics_.registered_servers : metrics_.registered_workers)
      ->Add(1);
  if (membership_.complete()) CompleteFormationLocked();
}

void Scheduler::CompleteFormationLocked() {
  phase_ = Phase::kRunning;
  metrics_.phase->Set(1);
  formed_at_ = clock_->Now();
  if (options_.spec.checkpoint.interval_steps > 0) {
    next_checkpoint_step_ = options_.spec.checkpoint.interval_steps;
  }
  TransportOptions client_options;
  client_options.job_id = options_.spec.hash;
  for (auto& [key, pending] : pending_) {
    const NodeRecord* node = membership_.Find(key.role, key.rank);
    CHECK(node != nullptr) << "pending registration of an unregistered " << Describe(key);
    auto client = RpcClient::Connect(node->address, proto::Role::SCHEDULER, 0, client_options);
    if (client.ok()) {
      node_clients_[key] = std::move(*client);
    } else {
      LOG(WARNING) << "scheduler: cannot connect to " << DescribeNode(*node) << ": " << client.status();
    }
    detector_.Watch(key);
    auto reply = pending->responder.NewReply();
    auto body = reply->body().initRegisterReply();
    body.setRank(key.rank);
    membership_.FillView(body.initView());
    pending->responder.Send(std::move(reply));
  }
  pending_.clear();
  LOG(INFO) << "scheduler: cluster formed in " << SecondsText(formed_at_ - started_at_) << ": "
            << options_.num_servers << " servers, " << options_.num_workers << " workers, view epoch "
            << membership_.epoch();
  wake_.notify_all();
}

proto::NodeState Scheduler::JobStateLocked() const {
  switch (phase_) {
    case Phase::kForming: return proto::NodeState::STARTING;
    case Phase::kRunning: return proto::NodeState::RUNNING;
    case Phase::kFinishing:
    case Phase::kDone: return proto::NodeState::STOPPING;
    case Phase::kFailed: return proto::NodeState::FAILED;
  }
  return proto::NodeState::FAILED;
}

void Scheduler::HandleHeartbeat(IncomingMessage& request, Responder responder) {
  const NodeKey key = SenderOf(request);
  metrics_.heartbeats->Increment();
  std::lock_guard<std::mutex> lock(mutex_);
  if (phase_ == Phase::kForming) {
    return responder.SendError(Unavailable("heartbeat from " + Describe(key) +
                                           " while the cluster is still forming"));
  }
  const bool finished_worker = key.role == proto::Role::WORKER && progress_.IsDone(key.rank);
  if (!detector_.Beat(key) && !finished_worker && phase_ != Phase::kFailed &&
      phase_ != Phase::kDone) {
    metrics_.refused->Increment();
    return responder.SendError(NotFound(Describe(key) + " is not a live member of the cluster"));
  }
  auto reply = responder.NewReply();
  auto body = reply->body().initHeartbeatReply();
  body.setViewEpoch(membership_.epoch());
  body.setJobState(JobStateLocked());
  if (phase_ == Phase::kFailed) body.setReason(failure_.ToString());
  responder.Send(std::move(reply));
}

void Scheduler::HandleBarrier(IncomingMessage& request, Responder responder) {
  const NodeKey key = SenderOf(request);
  auto barrier = request.envelope().getBody().getBarrier();
  const std::string name = barrier.getName();
  auto shared = std::make_shared<Responder>(std::move(responder));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Status refusal;
    if (phase_ != Phase::kRunning && phase_ != Phase::kFinishing) {
      refusal = Unavailable("barrier '" + name + "' from " + Describe(key) +
                            ": the job is not running");
    } else if (membership_.Find(key.role, key.rank) == nullptr) {
      refusal = NotFound("barrier '" + name + "': " + Describe(key) + " is not in the cluster");
    }
    if (!refusal.ok()) {
      metrics_.refused->Increment();
      return shared->SendError(refusal);
    }
  }
  metrics_.barriers->Increment();
  Status arrived = barriers_.Arrive(name, barrier.getCount(), key, [shared](const Status& status) {
    if (status.ok()) shared->SendAck();
    else shared->SendError(status);
  });
  if (!arrived.ok()) {
    metrics_.refused->Increment();
    shared->SendError(arrived);
  }
}

void Scheduler::HandleProgress(IncomingMessage& request, Responder responder) {
  const NodeKey key = SenderOf(request);
  if (key.role != proto::Role::WORKER) {
    metrics_.refused->Increment();
    return responder.SendError(InvalidArgument("progress from " + Describe(key) +
                                               ": only workers report progress"));
  }
  Status recorded = progress_.Record(key.rank, request.envelope().getBody().getProgress());
  if (!recorded.ok()) {
    metrics_.refused->Increment();
    return responder.SendError(recorded);
  }
  metrics_.progress_reports->Increment();
  // A worker that is done may leave before the final checkpoint ends: its silence from
  // now on is not a failure.
  if (progress_.IsDone(key.rank)) detector_.Forget(key);
  const ClusterProgress c = progress_.Current();
  metrics_.samples->Set(static_cast<double>(c.samples));
  metrics_.samples_per_sec->Set(c.samples_per_sec);
  for (const auto& [task, loss] : c.train_loss) {
    auto it = metrics_.train_loss.find(task);
    if (it != metrics_.train_loss.end()) it->second->Set(loss);
  }
  responder.SendAck();
  wake_.notify_all();  // the main loop checks "all done" and checkpoint steps
}

// ---- the main loop ----

void Scheduler::FailLocked(const Status& reason) {
  if (phase_ == Phase::kFailed || phase_ == Phase::kDone) return;
  phase_ = Phase::kFailed;
  metrics_.phase->Set(4);
  failure_ = reason;
  if (reason.code() == StatusCode::kCancelled) {
    LOG(WARNING) << "scheduler: the job is stopped: " << reason;
  } else {
    LOG(ERROR) << "scheduler: the job failed: " << reason;
  }
  for (auto& [key, pending] : pending_) pending->responder.SendError(reason);
  pending_.clear();
  wake_.notify_all();
}

void Scheduler::CheckDeadlines() {
  std::lock_guard<std::mutex> lock(mutex_);
  const Clock::TimePoint now = clock_->Now();
  if (phase_ == Phase::kForming && now - started_at_ > options_.register_timeout) {
    std::string missing;
    for (proto::Role role : {proto::Role::SERVER, proto::Role::WORKER}) {
      const auto& slots = membership_.nodes(role);
      for (size_t r = 0; r < slots.size(); ++r) {
        if (slots[r].rank < 0) missing += (missing.empty() ? "" : ", ") + Describe({role, static_cast<int>(r)});
      }
    }
    FailLocked(DeadlineExceeded("registration timed out after " +
                                SecondsText(options_.register_timeout) + ": " +
                                membership_.CountSummary() + " (missing " + missing + ")"));
    return;
  }
  if (phase_ == Phase::kRunning || phase_ == Phase::kFinishing) {
    for (const auto& [key, quiet] : detector_.FindSilent()) {
      dead_.push_back(key);
      metrics_.dead_nodes->Increment();
      const NodeRecord* node = membership_.Find(key.role, key.rank);
      FailLocked(Unavailable((node ? DescribeNode(*node) : Describe(key)) + " sent no heartbeat for " +
                             SecondsText(quiet) + " (heartbeat timeout " +
                             SecondsText(options_.heartbeat_timeout) +
                             "); the job ends because this version does not recover lost nodes"));
    }
  }
}

Status Scheduler::RunCheckpoint(uint64_t step) {
  std::vector<RpcClient*> servers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int r = 0; r < options_.num_servers; ++r) {
      auto it = node_clients_.find({proto::Role::SERVER, r});
      if (it == node_clients_.end()) {
        return Unavailable("checkpoint at step " + std::to_string(step) + ": no connection to server " +
                           std::to_string(r));
      }
      servers.push_back(it->second.get());
    }
  }
  StatusOr<std::string> dir =
      checkpoints_.Run(servers, NextCheckpointId(options_.spec.checkpoint.dir), step);
  (dir.ok() ? metrics_.checkpoints_ok : metrics_.checkpoints_failed)->Increment();
  return dir.status();
}

void Scheduler::BroadcastShutdown(const std::string& reason, bool failed) {
  std::vector<std::pair<NodeKey, std::future<StatusOr<IncomingMessage>>>> sent;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, client] : node_clients_) {
      if (std::find(dead_.begin(), dead_.end(), key) != dead_.end()) continue;
      auto request = client->NewRequest();
      auto body = request->body().initShutdown();
      body.setReason(reason);
      body.setFailed(failed);
      sent.emplace_back(key, client->Call(std::move(request), {.timeout = options_.shutdown_timeout}));
    }
  }
  for (auto& [key, reply] : sent) {
    StatusOr<IncomingMessage> answer = reply.get();
    Status status = answer.ok() ? ReplyStatus(*answer) : answer.status();
    LOG_IF(WARNING, !status.ok()) << "scheduler: " << Describe(key)
                                  << " did not acknowledge the shutdown: " << status;
  }
  LOG(INFO) << "scheduler: shutdown sent to " << sent.size() << " nodes (" << reason << ")";
}

void Scheduler::RequestStop(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_requested_ = true;
  stop_reason_ = reason;
  wake_.notify_all();
}

Status Scheduler::health() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return phase_ == Phase::kFailed ? failure_ : Status::OK();
}

Status Scheduler::Run() {
  Clock::TimePoint last_log = clock_->Now();
  const bool checkpoints_enabled = !options_.spec.checkpoint.dir.empty();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, options_.tick);
    if (stop_requested_) FailLocked(Cancelled("the scheduler was stopped: " + stop_reason_));
    if (phase_ == Phase::kFailed) break;
    lock.unlock();
    CheckDeadlines();
    barriers_.ExpireOverdue();
    lock.lock();
    if (phase_ != Phase::kRunning) continue;

    if (clock_->Now() - last_log >= options_.progress_interval) {
      last_log = clock_->Now();
      LOG(INFO) << "progress: " << progress_.Line();
    }
    const uint64_t step = progress_.Current().max_step;
    if (checkpoints_enabled && next_checkpoint_step_ > 0 && step >= next_checkpoint_step_) {
      while (next_checkpoint_step_ <= step) next_checkpoint_step_ += options_.spec.checkpoint.interval_steps;
      lock.unlock();
      // Async training keeps running while the servers write: a fuzzy checkpoint, whole
      // per row. A failed periodic checkpoint is not fatal; the final one is.
      Status s = RunCheckpoint(step);
      LOG_IF(WARNING, !s.ok()) << "scheduler: periodic checkpoint failed: " << s;
      lock.lock();
      continue;
    }
    if (progress_.AllDone()) {
      phase_ = Phase::kFinishing;
      metrics_.phase->Set(2);
      break;
    }
  }

  if (phase_ == Phase::kFailed) {
    const Status failure = failure_;
    lock.unlock();
    barriers_.CancelAll(failure);
    BroadcastShutdown(failure.ToString(), /*failed=*/true);
    return failure;
  }

  // Finishing: every worker is done, so the servers hold the final model.
  const ClusterProgress final_progress = progress_.Current();
  LOG(INFO) << "progress: " << progress_.Line();
  lock.unlock();
  Status finished = Status::OK();
  if (checkpoints_enabled) {
    finished = RunCheckpoint(final_progress.max_step).WithContext("final checkpoint");
  }
  RunSummary summary = Summary();
  if (finished.ok() && !options_.run_dir.empty()) {
    finished = WriteRunSummary(*fs_, options_.run_dir, summary);
    if (finished.ok()) LOG(INFO) << "scheduler: wrote " << SummaryPath(options_.run_dir);
  }
  lock.lock();
  if (!finished.ok()) {
    FailLocked(finished);
    lock.unlock();
    barriers_.CancelAll(finished);
    BroadcastShutdown(finished.ToString(), /*failed=*/true);
    return finished;
  }
  phase_ = Phase::kDone;
  metrics_.phase->Set(3);
  lock.unlock();
  barriers_.CancelAll(Cancelled("the job finished"));
  BroadcastShutdown("the job finished", /*failed=*/false);
  LOG(INFO) << "scheduler: job finished:\n" << RunSummaryJson(summary);
  return Status::OK();
}

RunSummary Scheduler::Summary() const {
  const ClusterProgress c = progress_.Current();
  const JobSpec& spec = options_.spec;
  RunSummary s;
  s.model = ModelTypeName(spec.model.type);
  s.mode = spec.training.mode == TrainingSpec::Mode::kSync ? "sync" : "async";
  s.servers = options_.num_servers;
  s.workers = options_.num_workers;
  s.epochs = spec.training.epochs;
  s.samples = c.samples;
  s.train_seconds = c.train_seconds;
  if (s.train_seconds <= 0) {
    // Workers that do not report their training time: the scheduler's wall clock.
    std::lock_guard<std::mutex> lock(mutex_);
    s.train_seconds = Seconds(clock_->Now() - formed_at_);
  }
  s.samples_per_sec = s.train_seconds > 0 ? static_cast<double>(s.samples) / s.train_seconds : 0;
  std::map<std::string, double> oracle;
  if (!spec.data.oracle.empty()) {
    StatusOr<std::map<std::string, double>> read = ReadOracleAucs(spec.data.oracle, task_names_);
    if (read.ok()) oracle = std::move(*read);
    else LOG(WARNING) << "scheduler: summary without oracle AUCs: " << read.status();
  }
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (const std::string& task : task_names_) {
    TaskSummary t{task, kNaN, kNaN, std::nullopt};
    auto it = c.eval.find(task);
    if (it != c.eval.end()) {
      t.auc = it->second.auc;
      t.logloss = it->second.logloss;
    }
    auto o = oracle.find(task);
    if (o != oracle.end()) t.oracle_auc = o->second;
    s.tasks.push_back(std::move(t));
  }
  return s;
}

}  // namespace mtps::scheduler
