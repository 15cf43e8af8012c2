// Scheduler: the request handlers (register, heartbeat, barrier, progress) and the main
// loop that checks deadlines, takes checkpoints and ends the job.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>

#include <glog/logging.h>

#include "protocol/node_security.h"
#include "scheduler/progress_display.h"

namespace mtps::scheduler {

namespace {

using Kind = proto::Envelope::Body;

// Workers paused for checkpoint N's cut wait at barrier "checkpoint-N".
const std::string kCutBarrierPrefix = "checkpoint-";

// Where workers wait after scoring `epoch` (worker/cluster_run.cc): nobody pushes between
// the epoch's last step and this barrier's release.
std::string EvaluatedBarrier(uint32_t epoch) { return "epoch-" + std::to_string(epoch) + "-evaluated"; }

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

// A failure a restart may cure (a lost peer, a timeout) or a clean stop: nodes exit with a
// retryable status (protocol/exit_codes.h), however they learn of it.
bool FailureIsRetryable(const Status& failure) {
  return failure.retryable() || failure.code() == StatusCode::kCancelled;
}

// With CURVE, a (role, rank) speaks only through the key that registered it: another key of
// the job (a worker claiming another's rank) is refused. Insecure: nothing to check.
Status CheckSpeaksFor(const Membership& membership, const IncomingMessage& request, NodeKey key) {
  if (request.peer().empty()) return Status::OK();
  const NodeRecord* held = membership.Find(key.role, key.rank);
  if (held == nullptr || held->identity == request.peer()) return Status::OK();
  return PermissionDenied("key '" + request.peer() + "' may not speak for " + Describe(key) +
                          ": that rank was registered by another key");
}

// The evaluated epochs of `history`, for a rejoined worker's early-stopping record.
void FillEvaluations(const std::vector<EpochSummary>& history, proto::RegisterReply::Builder reply) {
  size_t evaluated = 0;
  for (const EpochSummary& e : history) evaluated += e.evaluated ? 1 : 0;
  auto list = reply.initEvaluations(static_cast<unsigned>(evaluated));
  unsigned i = 0;
  for (const EpochSummary& e : history) {
    if (!e.evaluated) continue;
    auto out = list[i++];
    out.setEpoch(static_cast<uint32_t>(e.epoch));
    auto tasks = out.initTasks(static_cast<unsigned>(e.tasks.size()));
    for (unsigned t = 0; t < e.tasks.size(); ++t) {
      tasks[t].setName(e.tasks[t].name);
      tasks[t].setAuc(e.tasks[t].auc);
      tasks[t].setLogloss(e.tasks[t].logloss);
      tasks[t].setMse(e.tasks[t].mse);
    }
  }
}

}  // namespace

// A node asks again while it waits (SchedulerClient resends a registration every few
// seconds, with the same request id): every copy is answered alike, so the first answer
// the node reads is the real one, never a "superseded" error.
struct Scheduler::PendingRegistration {
  std::vector<Responder> responders;
  void SendError(const Status& status) {
    for (Responder& r : responders) r.SendError(status);
  }
};

Scheduler::Scheduler(SchedulerOptions options, const Clock* clock, FileSystem* fs,
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
  if (!options_.spec.checkpoint.dir.empty()) {
    journal_path_ = JournalPath(options_.spec.checkpoint.dir);
    journal_thread_ = std::thread([this] { JournalLoop(); });
  }
  for (const TaskSpec& t : options_.spec.tasks) task_names_.push_back(t.name);
  metrics_.registered_servers = metrics->AddGauge(
      "mtps_scheduler_registered_nodes", "Nodes registered, by role.", {{"role", "server"}});
  metrics_.registered_workers = metrics->AddGauge(
      "mtps_scheduler_registered_nodes", "Nodes registered, by role.", {{"role", "worker"}});
  metrics_.phase = metrics->AddGauge(
      "mtps_scheduler_job_phase", "0 forming, 1 running, 2 finishing, 3 done, 4 failed.");
  // The same as a labelled series (1 for the current phase, 0 for the others), so that a
  // query or an alert names the phase instead of its number.
  const char* const phases[] = {"forming", "running", "finishing", "done", "failed"};
  for (int p = 0; p < 5; ++p) {
    metrics->AddGaugeFunction("mtps_scheduler_job_state", "The job's phase: 1 for the current one.",
                              {{"phase", phases[p]}},
                              [gauge = metrics_.phase, p] { return gauge->value() == p ? 1.0 : 0.0; });
  }
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
  metrics_.checkpoint_pause_ms = metrics->AddGauge(
      "mtps_scheduler_checkpoint_pause_seconds",
      "How long the workers waited for the last checkpoint's servers to write (consistent cut).");
  metrics_.samples = metrics->AddGauge("mtps_job_samples", "Training samples over all workers.");
  metrics_.samples_per_sec = metrics->AddGauge("mtps_job_samples_per_second",
                                               "Training throughput over all workers.");
  for (const std::string& task : task_names_) {
    metrics_.train_loss[task] = metrics->AddGauge(
        "mtps_job_train_loss", "Recent training loss, mean over workers.", {{"task", task}});
  }

  ExportAuthMetrics(metrics, rpc_, "rpc");
  rpc_.Handle(Kind::REGISTER, [this](IncomingMessage& m, Responder r) { HandleRegister(m, std::move(r)); });
  // Registration checks the spec hash itself (and says which the node holds); every other
  // request must carry this job's id, so that no one who lacks the spec hash speaks for a
  // node. The refusal names no job id.
  using Member = void (Scheduler::*)(IncomingMessage&, Responder);
  auto of_this_job = [this](Member handle) {
    return [this, handle](IncomingMessage& m, Responder r) {
      if (m.envelope().getJobId() != options_.spec.hash) {
        metrics_.refused->Increment();
        return r.SendError(FailedPrecondition(
            BodyKindName(m.envelope().getBody().which()) + " from " + Describe(SenderOf(m)) +
            " of another job: its job id is not this scheduler's"));
      }
      (this->*handle)(m, std::move(r));
    };
  };
  rpc_.Handle(Kind::HEARTBEAT, of_this_job(&Scheduler::HandleHeartbeat));
  rpc_.Handle(Kind::BARRIER, of_this_job(&Scheduler::HandleBarrier));
  rpc_.Handle(Kind::PROGRESS, of_this_job(&Scheduler::HandleProgress));
  rpc_.Handle(Kind::CLUSTER_VIEW, of_this_job(&Scheduler::HandleClusterView));
}

Scheduler::~Scheduler() {
  checkpoints_.Cancel(Cancelled("the scheduler is exiting"));
  JoinCheckpoint();
  barriers_.CancelAll(Cancelled("the scheduler is exiting"));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, pending] : pending_) pending->SendError(Cancelled("the scheduler is exiting"));
    pending_.clear();
  }
  rpc_.Stop();
  if (journal_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(journal_mutex_);
      journal_stop_ = true;  // the last snapshot (done, failed) is written first
    }
    journal_wake_.notify_all();
    journal_thread_.join();
  }
}

StatusOr<int> Scheduler::Start() {
  if (options_.restore) MTPS_RETURN_IF_ERROR(RestoreFromJournal());
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
  node.identity = request.peer();

  std::lock_guard<std::mutex> lock(mutex_);
  if (phase_ != Phase::kForming) {
    // A node whose registration reply was lost asks again: same answer.
    if (node.role == proto::Role::SERVER || node.role == proto::Role::WORKER) {
      for (const NodeRecord& held : membership_.nodes(node.role)) {
        if (held.address != node.address || node.spec_hash != membership_.spec_hash() ||
            held.identity != node.identity) {
          continue;
        }
        auto reply = responder.NewReply();
        auto body = reply->body().initRegisterReply();
        body.setRank(held.rank);
        body.setGeneration(held.generation);
        body.setRejoined(true);
        body.setIncarnation(incarnation_);
        membership_.FillView(body.initView());
        responder.Send(std::move(reply));
        return;
      }
    }
    if (phase_ == Phase::kRunning && recovery_enabled() &&
        (node.role == proto::Role::SERVER || node.role == proto::Role::WORKER)) {
      return RejoinLocked(node, std::move(responder));
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
  if (!slot) slot = std::make_unique<PendingRegistration>();
  slot->responders.push_back(std::move(responder));
  (node.role == proto::Role::SERVER ? metrics_.registered_servers : metrics_.registered_workers)
      ->Add(1);
  if (membership_.complete()) CompleteFormationLocked();
}

void Scheduler::DeclareLostLocked(NodeKey key, const std::string& why) {
  const NodeRecord* node = membership_.Find(key.role, key.rank);
  const std::string who = node ? DescribeNode(*node) : Describe(key);
  membership_.MarkLost(key.role, key.rank);
  detector_.Forget(key);
  node_clients_.erase(key);
  lost_[key] = clock_->Now();
  metrics_.dead_nodes->Increment();
  wake_.notify_all();  // a cut waiting for this node looks again
  LOG(WARNING) << "scheduler: " << who << " is lost: " << why << "; view epoch "
               << membership_.epoch() << ", waiting up to " << SecondsText(options_.recover_timeout)
               << " for a replacement under the same rank";
  // A checkpoint waiting on a lost server would wait for its timeout: give it up now.
  if (key.role == proto::Role::SERVER && checkpoint_running_) {
    checkpoints_.Abandon(Unavailable(who + " was lost during the checkpoint"));
  }
  JournalLocked();
}

void Scheduler::RejoinLocked(const NodeRecord& node, Responder responder) {
  const int size = node.role == proto::Role::SERVER ? options_.num_servers : options_.num_workers;
  const int asked = node.requested_rank;
  // The same rank asked for again by a new process: its old holder is dead or stale
  // (a restart is often quicker than the heartbeat timeout). Fence the old one.
  if (const NodeRecord* held = asked >= 0 && asked < size ? membership_.Find(node.role, asked) : nullptr;
      held != nullptr && held->identity != node.identity) {
    // A rank held by a live node is taken over only by a restart of that node (its key).
    metrics_.refused->Increment();
    LOG(WARNING) << "scheduler: refused key '" << node.identity << "' asking for the rank of "
                 << DescribeNode(*held) << ", registered by another key";
    return responder.SendError(PermissionDenied(
        RoleName(node.role) + " rank " + std::to_string(asked) + " is held by another key"));
  }
  if (asked >= 0 && asked < size && membership_.Find(node.role, asked) != nullptr) {
    DeclareLostLocked({node.role, asked}, "replaced by a new process at " + node.address +
                                              " (pid " + std::to_string(node.pid) + ")");
  }
  StatusOr<int> rank = membership_.Register(node);
  if (!rank.ok()) {
    metrics_.refused->Increment();
    LOG(WARNING) << "scheduler: rejoin refused: " << rank.status();
    return responder.SendError(rank.status());
  }
  const NodeKey key{node.role, *rank};
  const NodeRecord* held = membership_.Find(key.role, key.rank);
  TransportOptions client_options;
  client_options.job_id = options_.spec.hash;
  auto client = RpcClient::Connect(node.address, proto::Role::SCHEDULER, 0, client_options);
  if (client.ok()) node_clients_[key] = std::shared_ptr<RpcClient>(std::move(*client));
  detector_.Watch(key);
  rejoined_.insert(key);
  wake_.notify_all();  // a cut waiting for this rank counts the replacement
  std::string away;
  if (auto it = lost_.find(key); it != lost_.end()) {
    away = " after " + SecondsText(clock_->Now() - it->second);
    lost_.erase(it);
  }
  JournalLocked();
  const uint64_t step = progress_.Current().max_step;
  std::string lost_steps;
  if (key.role == proto::Role::SERVER) {
    lost_steps = last_checkpoint_step_ ? "; its shard restarts from the checkpoint at step " +
                                             std::to_string(*last_checkpoint_step_) + ", " +
                                             std::to_string(step - std::min(step, *last_checkpoint_step_)) +
                                             " steps of its updates are lost (job at step " +
                                             std::to_string(step) + ")"
                                       : "; no checkpoint yet: its shard restarts empty, " +
                                             std::to_string(step) + " steps of its updates are lost";
  }
  LOG(WARNING) << "scheduler: " << DescribeNode(*held) << " rejoined" << away << " (generation "
               << held->generation << ", view epoch " << membership_.epoch() << ")" << lost_steps;
  auto reply = responder.NewReply();
  auto body = reply->body().initRegisterReply();
  body.setRank(key.rank);
  body.setGeneration(held->generation);
  body.setRejoined(true);
  body.setIncarnation(incarnation_);
  if (key.role == proto::Role::WORKER && options_.spec.training.mode == TrainingSpec::Mode::kSync) {
    // Sync: the others wait for this rank at the step after the newest one any worker
    // finished (a finished sync step was applied whole on every server). Every worker takes
    // the same full batches per epoch, so the step says where this rank's stream stands; the
    // servers answer pushes of steps applied already without applying them again, so steps
    // finished after the last heartbeats are replayed harmlessly.
    uint64_t finished = 0;
    for (const auto& [rank, step] : finished_steps_) finished = std::max(finished, step);
    for (const ProgressTracker::WorkerState& w : progress_.Export()) finished = std::max(finished, w.step);
    body.setResume(true);
    body.setResumeStep(finished);
    LOG(WARNING) << "scheduler: worker " << key.rank << " resumes after sync step " << finished
                 << ", the newest step a worker finished; the others wait for it at the next";
  } else if (key.role == proto::Role::WORKER) {
    for (const WorkerPosition& p : committed_positions_) {
      if (p.rank != key.rank) continue;
      body.setResume(true);
      body.setResumeEpoch(p.epoch);
      body.setResumeRecords(p.records);
      body.setResumeStep(p.step);
      LOG(WARNING) << "scheduler: worker " << key.rank << " resumes at epoch " << p.epoch << " record "
                   << p.records << " (step " << p.step << ") of the last committed checkpoint";
    }
  }
  if (key.role == proto::Role::WORKER) FillEvaluations(progress_.History(), body);
  membership_.FillView(body.initView());
  responder.Send(std::move(reply));
}

void Scheduler::HandleClusterView(IncomingMessage& request, Responder responder) {
  (void)request;
  std::lock_guard<std::mutex> lock(mutex_);
  auto reply = responder.NewReply();
  membership_.FillView(reply->body().initClusterView());
  responder.Send(std::move(reply));
}

void Scheduler::CompleteFormationLocked() {
  phase_ = Phase::kRunning;
  metrics_.phase->Set(1);
  formed_at_ = clock_->Now();
  last_checkpoint_started_ = formed_at_;
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
      node_clients_[key] = std::shared_ptr<RpcClient>(std::move(*client));
    } else {
      LOG(WARNING) << "scheduler: cannot connect to " << DescribeNode(*node) << ": " << client.status();
    }
    detector_.Watch(key);
    for (Responder& responder : pending->responders) {
      auto reply = responder.NewReply();
      auto body = reply->body().initRegisterReply();
      body.setRank(key.rank);
      body.setGeneration(node->generation);
      body.setIncarnation(incarnation_);
      membership_.FillView(body.initView());
      responder.Send(std::move(reply));
    }
  }
  pending_.clear();
  JournalLocked();
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
  if (Status s = CheckSpeaksFor(membership_, request, key); !s.ok()) {
    metrics_.refused->Increment();
    return responder.SendError(s);
  }
  const uint64_t generation = request.envelope().getBody().getHeartbeat().getGeneration();
  const NodeRecord* holder = membership_.Find(key.role, key.rank);
  if (generation != 0 && (holder == nullptr || holder->generation != generation)) {
    // Fencing: this process was declared lost (or replaced) and must not act in the job.
    metrics_.refused->Increment();
    return responder.SendError(NotFound(
        Describe(key) + " of generation " + std::to_string(generation) +
        " is fenced: it was declared lost" +
        (holder ? " and replaced by generation " + std::to_string(holder->generation) + " at " +
                      holder->address
                : "") +
        "; a stale process must not write into the job"));
  }
  const bool finished_worker = key.role == proto::Role::WORKER && progress_.IsDone(key.rank);
  if (!detector_.Beat(key) && !finished_worker && phase_ != Phase::kFailed &&
      phase_ != Phase::kDone) {
    metrics_.refused->Increment();
    return responder.SendError(NotFound(Describe(key) + " is not a live member of the cluster"));
  }
  if (key.role == proto::Role::WORKER) {
    uint64_t& finished = finished_steps_[key.rank];
    finished = std::max(finished, request.envelope().getBody().getHeartbeat().getStep());
  }
  auto reply = responder.NewReply();
  auto body = reply->body().initHeartbeatReply();
  body.setViewEpoch(membership_.epoch());
  body.setJobState(JobStateLocked());
  if (key.role == proto::Role::WORKER) body.setCheckpointPause(cut_id_);
  body.setIncarnation(incarnation_);
  if (phase_ == Phase::kFailed) {
    body.setReason(failure_.ToString());
    body.setRetryable(FailureIsRetryable(failure_));
  }
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
    } else {
      refusal = CheckSpeaksFor(membership_, request, key);
      if (refusal.ok()) refusal = CheckGenerationLocked(request, key);
    }
    if (!refusal.ok()) {
      metrics_.refused->Increment();
      return shared->SendError(refusal);
    }
    if (name.starts_with(kCutBarrierPrefix) && key.role == proto::Role::WORKER) {
      // A worker paused for a checkpoint's cut: answered when the servers have written.
      // One for a cut already over (or abandoned) goes on at once.
      if (name != kCutBarrierPrefix + std::to_string(cut_id_) || cut_id_ == 0) return shared->SendAck();
      cut_waiters_[key.rank] = shared;
      wake_.notify_all();
      return;
    }
    // Barrier names are used once in a job, so an arrival at one already released passes at
    // once: a replacement catching up with its peers, a node whose answer died with the
    // previous scheduler, or an arrival sent again across a restart while the first one,
    // queued in the socket, was delivered to the new scheduler and released the barrier.
    if (released_barriers_.count(name)) return shared->SendAck();
    if (key.role == proto::Role::WORKER) ++at_barrier_[key.rank];
    wake_.notify_all();
  }
  metrics_.barriers->Increment();
  // True when the release is held: a worker let go during a checkpoint's cut would train
  // while the servers write; it goes on when the cut ends (ReleaseCutLocked).
  auto left = [this, key, name, shared](bool released) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (released && released_barriers_.insert(name).second) JournalLocked();
    if (key.role != proto::Role::WORKER) return false;
    // And the barrier after the best epoch's evaluation waits for that epoch's checkpoint.
    if (released && (cut_id_ != 0 || (best_due_ && name == EvaluatedBarrier(*best_due_)))) {
      held_releases_.emplace_back(key.rank, shared);
      return true;
    }
    LeaveBarrierLocked(key.rank);
    return false;
  };
  Status arrived = barriers_.Arrive(name, barrier.getCount(), key, [shared, left](const Status& status) {
    if (left(status.ok())) return;
    if (status.ok()) shared->SendAck();
    else shared->SendError(status);
  });
  if (!arrived.ok()) {
    left(false);
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
  {
    // With CURVE only the key that registered this worker rank reports for it.
    std::lock_guard<std::mutex> lock(mutex_);
    Status s = CheckSpeaksFor(membership_, request, key);
    if (s.ok() && !request.peer().empty() && membership_.Find(key.role, key.rank) == nullptr) {
      s = PermissionDenied("progress from " + Describe(key) + ": not a registered worker");
    }
    if (s.ok()) s = CheckGenerationLocked(request, key);
    if (!s.ok()) {
      metrics_.refused->Increment();
      return responder.SendError(s);
    }
  }
  auto report = request.envelope().getBody().getProgress();
  if (std::string(report.getPhase().cStr()) == "failed") {
    responder.SendAck();
    std::lock_guard<std::mutex> lock(mutex_);
    FailLocked(FailedPrecondition(Describe(key) + " failed: " + std::string(report.getReason().cStr())));
    return;
  }
  const std::string phase = report.getPhase().cStr();
  // A report sent again (the scheduler restarted, or its answer was lost) after "done".
  if (phase == "done" && progress_.IsDone(key.rank)) return responder.SendAck();
  Status recorded = progress_.Record(key.rank, report);
  if (recorded.ok() && phase == "train") {
    std::lock_guard<std::mutex> lock(mutex_);
    positions_[key.rank] = WorkerPosition{key.rank, report.getEpoch(), report.getDataPosition(),
                                              report.getStep()};
  }
  if (recorded.ok() && (phase == "eval" || phase == "done")) {
    std::lock_guard<std::mutex> lock(mutex_);
    // The model as it is at the end of the best epoch so far is checkpointed before the
    // workers leave the epoch (the barrier after its evaluation is held until then). An
    // epoch whose barrier released already (a replacement's late report) is not: the
    // others train on.
    if (phase == "eval" && report.getBestSoFar() && !options_.spec.checkpoint.dir.empty() &&
        phase_ == Phase::kRunning && !released_barriers_.count(EvaluatedBarrier(report.getEpoch()))) {
      best_due_ = report.getEpoch();
    }
    JournalLocked();  // the final evaluation and who is done outlive a restart
  }
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
  for (auto& [key, pending] : pending_) pending->SendError(reason);
  pending_.clear();
  JournalLocked();
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
    std::vector<std::pair<NodeKey, std::chrono::nanoseconds>> silent = detector_.FindSilent();
    if (recovery_enabled() && phase_ == Phase::kRunning) {
      for (const auto& [key, quiet] : silent) {
        DeclareLostLocked(key, "no heartbeat for " + SecondsText(quiet) + " (heartbeat timeout " +
                                   SecondsText(options_.heartbeat_timeout) + ")");
      }
      for (const auto& [key, since] : lost_) {
        if (now - since <= options_.recover_timeout) continue;
        FailLocked(Unavailable(Describe(key) + " was lost " + SecondsText(now - since) +
                               " ago and no replacement registered within the recovery timeout " +
                               SecondsText(options_.recover_timeout)));
        return;
      }
      return;
    }
    if (silent.empty()) return;
    // The node silent longest went first; the others may only have waited on it.
    std::stable_sort(silent.begin(), silent.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string also;
    for (const auto& [key, quiet] : silent) {
      dead_.push_back(key);
      metrics_.dead_nodes->Increment();
      if (key != silent.front().first) also += (also.empty() ? "" : ", ") + Describe(key);
    }
    const auto& [key, quiet] = silent.front();
    const NodeRecord* node = membership_.Find(key.role, key.rank);
    FailLocked(Unavailable((node ? DescribeNode(*node) : Describe(key)) + " sent no heartbeat for " +
                           SecondsText(quiet) + " (heartbeat timeout " +
                           SecondsText(options_.heartbeat_timeout) + ")" +
                           (also.empty() ? "" : "; silent after it: " + also) +
                           "; the job ends because this version does not recover lost nodes"));
  }
}

Status Scheduler::RunCheckpoint(uint64_t step) {
  std::vector<RpcClient*> servers;
  std::vector<std::shared_ptr<RpcClient>> held;  // a server lost meanwhile leaves node_clients_
  // The servers as they are now (requires mutex_); from then on, a server declared lost
  // abandons the checkpoint instead of letting it wait for the ack timeout.
  auto take_servers = [&]() -> Status {
    for (int r = 0; r < options_.num_servers; ++r) {
      auto it = node_clients_.find({proto::Role::SERVER, r});
      if (it == node_clients_.end()) {
        return Unavailable("checkpoint at step " + std::to_string(step) + ": server " +
                           std::to_string(r) + " is lost");
      }
      servers.push_back(it->second.get());
      held.push_back(it->second);
    }
    checkpoints_.ClearAbandon();
    return Status::OK();
  };
  const uint64_t id = NextCheckpointId(options_.spec.checkpoint.dir);
  std::vector<WorkerPosition> positions;
  std::optional<std::chrono::steady_clock::time_point> paused_at;
  if (options_.spec.training.mode == TrainingSpec::Mode::kAsync) {
    // A consistent cut: every worker stops at a step boundary with its pushes applied
    // (or waits at a barrier, or is done), reports its data position, and waits while
    // the servers write. Workers see the request in their next heartbeat reply.
    std::unique_lock<std::mutex> lock(mutex_);
    if (phase_ == Phase::kRunning) {
      cut_id_ = id;
      const auto deadline = std::chrono::steady_clock::now() + options_.pause_timeout;
      const bool all = wake_.wait_until(lock, deadline, [&] {
        return phase_ == Phase::kFailed || AllWorkersPausedLocked();
      });
      paused_at = std::chrono::steady_clock::now();
      if (!all || phase_ == Phase::kFailed) {
        ReleaseCutLocked();
        return Unavailable("checkpoint " + std::to_string(id) + ": the workers did not pause for the cut within " +
                           SecondsText(options_.pause_timeout));
      }
      for (int r = 0; r < options_.num_workers; ++r) {
        auto it = positions_.find(r);
        positions.push_back(it != positions_.end() ? it->second : WorkerPosition{r, 0, 0, 0});
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Status s = take_servers(); !s.ok()) {
      if (paused_at) ReleaseCutLocked();
      return s;
    }
  }
  StatusOr<std::string> dir = checkpoints_.Run(servers, id, step, positions);
  (dir.ok() ? metrics_.checkpoints_ok : metrics_.checkpoints_failed)->Increment();
  std::lock_guard<std::mutex> lock(mutex_);
  if (paused_at) {
    const double pause_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - *paused_at).count();
    metrics_.checkpoint_pause_ms->Set(pause_ms / 1000);
    LOG(INFO) << "scheduler: checkpoint " << id << ": workers paused " << static_cast<int64_t>(pause_ms)
              << " ms for the cut";
    ReleaseCutLocked();
  }
  if (dir.ok()) {
    last_checkpoint_step_ = step;
    if (!positions.empty()) committed_positions_ = positions;
    if (checkpoint_for_best_) {
      best_model_ = BestModel{.epoch = *checkpoint_for_best_, .checkpoint_id = id};
      checkpoints_.KeepAlways(id);
      LOG(INFO) << "scheduler: checkpoint " << *dir << " holds the model of epoch " << *checkpoint_for_best_
                << ", the best so far; it is kept";
    }
    JournalLocked();
  }
  return dir.status();
}

bool Scheduler::AllWorkersPausedLocked() const {
  for (int r = 0; r < options_.num_workers; ++r) {
    if (progress_.IsDone(r) || cut_waiters_.count(r) || at_barrier_.count(r) ||
        membership_.Find(proto::Role::WORKER, r) == nullptr) {
      continue;
    }
    return false;
  }
  return true;
}

void Scheduler::LeaveBarrierLocked(int rank) {
  // Counted per arrival: a replacement's arrival displaces its predecessor's, whose
  // answer (CANCELLED) must not take the replacement off the barrier.
  auto it = at_barrier_.find(rank);
  if (it != at_barrier_.end() && --it->second <= 0) at_barrier_.erase(it);
}

void Scheduler::ReleaseCutLocked() {
  cut_id_ = 0;
  for (auto& [rank, waiter] : cut_waiters_) waiter->SendAck();
  cut_waiters_.clear();
  if (!best_due_) ReleaseHeldLocked();
}

void Scheduler::ReleaseHeldLocked() {
  for (auto& [rank, waiter] : held_releases_) {
    LeaveBarrierLocked(rank);
    waiter->SendAck();
  }
  held_releases_.clear();
}

void Scheduler::BroadcastShutdown(const std::string& reason, bool failed, bool retryable) {
  std::vector<std::pair<NodeKey, std::future<StatusOr<IncomingMessage>>>> sent;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, client] : node_clients_) {
      if (std::find(dead_.begin(), dead_.end(), key) != dead_.end()) continue;
      auto request = client->NewRequest();
      auto body = request->body().initShutdown();
      body.setReason(reason);
      body.setFailed(failed);
      body.setRetryable(retryable);
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

void Scheduler::StartCheckpointLocked(uint64_t step) {
  checkpoint_running_ = true;
  last_checkpoint_started_ = clock_->Now();
  checkpoint_thread_ = std::thread([this, step] {
    Status s = RunCheckpoint(step);
    std::lock_guard<std::mutex> lock(mutex_);
    if (checkpoint_for_best_) {
      LOG_IF(WARNING, !s.ok()) << "scheduler: the checkpoint of epoch " << *checkpoint_for_best_
                               << ", the best so far, failed: its model is not kept (" << s << ")";
      checkpoint_for_best_.reset();
      best_due_.reset();
      ReleaseHeldLocked();  // the workers waiting after the epoch's evaluation go on
    }
    checkpoint_result_ = s;
    checkpoint_running_ = false;
    wake_.notify_all();
  });
}

void Scheduler::JoinCheckpoint() {
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
}

Status Scheduler::Run() {
  std::optional<ProgressDisplay> display;
  if (options_.progress_fd >= 0) {
    display.emplace(options_.progress_fd, ProgressDisplay::ModeFor(options_.progress_fd));
  }
  ProgressReporter reporter(clock_,
                            {.epochs = options_.spec.training.epochs,
                             .tasks = task_names_,
                             .interval = options_.progress_interval},
                            display ? &*display : nullptr);
  const bool checkpoints_enabled = !options_.spec.checkpoint.dir.empty();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, options_.tick);
    if (stop_requested_ && phase_ != Phase::kFinishing && !stop_checkpoint_running_) {
      if (phase_ == Phase::kRunning && checkpoints_enabled) {
        // A clean stop keeps the training so far: a checkpoint first (the one in flight
        // counts), then the nodes are told to stop.
        stop_checkpoint_running_ = true;
        LOG(WARNING) << "scheduler: stop requested (" << stop_reason_
                     << "): taking a checkpoint before stopping";
        // One in flight, or ended with its result not yet read, is the stop's checkpoint.
        if (!checkpoint_running_ && !checkpoint_result_) StartCheckpointLocked(progress_.Current().max_step);
      } else {
        FailLocked(Cancelled("the scheduler was stopped: " + stop_reason_));
      }
    }
    if (phase_ == Phase::kFailed) break;
    const bool running = phase_ == Phase::kRunning;
    lock.unlock();
    CheckDeadlines();
    barriers_.ExpireOverdue();
    // Unlocked: a terminal that does not take the line at once must not hold up the job.
    if (running) reporter.Tick(progress_.Current(), progress_.History());
    lock.lock();
    if (phase_ == Phase::kFailed) break;

    if (checkpoint_result_) {
      const Status s = *checkpoint_result_;
      checkpoint_result_.reset();
      lock.unlock();
      JoinCheckpoint();  // its thread has only its return left
      lock.lock();
      if (phase_ == Phase::kFinishing) {
        // The final checkpoint holds the model: without it the job failed.
        if (!s.ok()) FailLocked(s.WithContext("final checkpoint"));
        break;
      }
      if (stop_checkpoint_running_) {
        stop_checkpoint_running_ = false;
        FailLocked(Cancelled("the scheduler was stopped: " + stop_reason_ +
                             (s.ok() ? "; a checkpoint at step " + std::to_string(*last_checkpoint_step_) +
                                           " holds the job, a restart with --restore goes on from it"
                                     : "; the checkpoint on stop failed: " + s.ToString())));
        break;
      }
      // A failed periodic checkpoint is not fatal; the next one may succeed.
      LOG_IF(WARNING, !s.ok()) << "scheduler: periodic checkpoint failed: " << s;
    }
    if (phase_ != Phase::kRunning || checkpoint_running_) continue;

    if (best_due_ && !checkpoint_for_best_) {
      checkpoint_for_best_ = best_due_;
      StartCheckpointLocked(progress_.Current().max_step);
      continue;
    }
    if (progress_.AllDone()) {
      // Every worker is done, so the servers hold the final model.
      phase_ = Phase::kFinishing;
      metrics_.phase->Set(2);
      JournalLocked();
      LOG(INFO) << "progress: " << progress_.Line();
      if (!checkpoints_enabled) break;
      StartCheckpointLocked(progress_.Current().max_step);
      continue;
    }
    const uint64_t step = progress_.Current().max_step;
    const double every_seconds = options_.spec.checkpoint.interval_seconds;
    const bool seconds_due =
        every_seconds > 0 && clock_->Now() - last_checkpoint_started_ >=
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::duration<double>(every_seconds));
    if (checkpoints_enabled &&
        ((next_checkpoint_step_ > 0 && step >= next_checkpoint_step_) || seconds_due)) {
      while (next_checkpoint_step_ > 0 && next_checkpoint_step_ <= step) {
        next_checkpoint_step_ += options_.spec.checkpoint.interval_steps;
      }
      // Async training keeps running while the servers write: a fuzzy checkpoint, whole
      // per row.
      StartCheckpointLocked(step);
    }
  }

  if (phase_ == Phase::kFailed) {
    const Status failure = failure_;
    lock.unlock();
    checkpoints_.Cancel(failure);
    JoinCheckpoint();
    barriers_.CancelAll(failure);
    BroadcastShutdown(failure.ToString(), /*failed=*/true, FailureIsRetryable(failure));
    return failure;
  }

  lock.unlock();
  RunSummary summary = Summary();
  reporter.Finish(summary);
  Status finished = Status::OK();
  if (!options_.run_dir.empty()) {
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
  JournalLocked();
  lock.unlock();
  barriers_.CancelAll(Cancelled("the job finished"));
  BroadcastShutdown("the job finished", /*failed=*/false);
  LOG(INFO) << "scheduler: job finished:\n" << RunSummaryJson(summary);
  return Status::OK();
}

// ---- the journal ----

Status Scheduler::RestoreFromJournal() {
  if (journal_path_.empty()) {
    LOG(WARNING) << "scheduler: --restore, but the job has no checkpoint.dir to hold a journal; "
                    "starting a new job";
    return Status::OK();
  }
  StatusOr<SchedulerJournal> read = ReadSchedulerJournal(*fs_, journal_path_);
  if (read.status().code() == StatusCode::kNotFound) {
    LOG(WARNING) << "scheduler: --restore found no journal at " << journal_path_ << "; starting a new job";
    return Status::OK();
  }
  if (!read.ok()) {
    return read.status().WithContext("restoring the scheduler (move the journal away to start the job anew)");
  }
  const SchedulerJournal& j = *read;
  std::lock_guard<std::mutex> lock(mutex_);
  if (j.phase == "done" || j.phase == "failed") {
    incarnation_ = j.incarnation + 1;
    LOG(WARNING) << "scheduler: the journal at " << journal_path_ << " is of a job that "
                 << (j.phase == "done" ? "finished" : "failed") << "; starting a new job";
    return Status::OK();
  }
  if (j.spec_hash != options_.spec.hash) {
    return FailedPrecondition("scheduler journal " + journal_path_ +
                              " is of another job spec; refusing to restore it into this job");
  }
  if (j.num_servers != options_.num_servers || j.num_workers != options_.num_workers) {
    return FailedPrecondition("scheduler journal " + journal_path_ + " is of a job of " +
                              std::to_string(j.num_servers) + " servers and " + std::to_string(j.num_workers) +
                              " workers, this one has " + std::to_string(options_.num_servers) + " and " +
                              std::to_string(options_.num_workers));
  }
  MTPS_RETURN_IF_ERROR(membership_.Restore(j.membership));
  if (!j.progress.empty()) MTPS_RETURN_IF_ERROR(progress_.Import(j.progress));
  incarnation_ = j.incarnation + 1;
  phase_ = Phase::kRunning;  // a finishing job finishes again: every worker is done
  metrics_.phase->Set(1);
  formed_at_ = clock_->Now();
  last_checkpoint_started_ = formed_at_;
  last_checkpoint_step_ = j.last_checkpoint_step;
  next_checkpoint_step_ = j.next_checkpoint_step;
  committed_positions_ = j.committed_positions;
  released_barriers_ = j.released_barriers;
  best_model_ = j.best_model;
  if (best_model_) checkpoints_.KeepAlways(best_model_->checkpoint_id);
  rejoined_ = j.rejoined;
  for (const NodeKey& key : j.lost) lost_[key] = clock_->Now();
  TransportOptions client_options;
  client_options.job_id = options_.spec.hash;
  int live = 0;
  for (proto::Role role : {proto::Role::SERVER, proto::Role::WORKER}) {
    for (const NodeRecord& node : membership_.nodes(role)) {
      if (node.rank < 0) continue;
      const NodeKey key{role, node.rank};
      auto client = RpcClient::Connect(node.address, proto::Role::SCHEDULER, 0, client_options);
      if (client.ok()) node_clients_[key] = std::shared_ptr<RpcClient>(std::move(*client));
      // Silence counts from now: every node has a heartbeat timeout to find us again.
      if (!(role == proto::Role::WORKER && progress_.IsDone(node.rank))) detector_.Watch(key);
      (role == proto::Role::SERVER ? metrics_.registered_servers : metrics_.registered_workers)->Add(1);
      ++live;
    }
  }
  LOG(WARNING) << "scheduler: restored the running job from " << journal_path_ << " (incarnation "
               << incarnation_ << ", view epoch " << membership_.epoch() << "): " << live << " nodes, "
               << j.lost.size() << " lost, last checkpoint "
               << (last_checkpoint_step_ ? "at step " + std::to_string(*last_checkpoint_step_) : "none")
               << "; " << progress_.Line();
  JournalLocked();
  return Status::OK();
}

void Scheduler::JournalLocked() {
  if (journal_path_.empty() || phase_ == Phase::kForming) return;
  SchedulerJournal j;
  j.spec_hash = options_.spec.hash;
  j.num_servers = options_.num_servers;
  j.num_workers = options_.num_workers;
  j.incarnation = incarnation_;
  // A stopped scheduler (SIGTERM) leaves the journal of a running job, whatever a node
  // reports after the stop: a restart goes on.
  const bool stopped = phase_ == Phase::kFailed && failure_.code() == StatusCode::kCancelled;
  j.phase = phase_ == Phase::kFinishing           ? "finishing"
            : phase_ == Phase::kDone              ? "done"
            : phase_ == Phase::kFailed && !stopped ? "failed"
                                                   : "running";
  j.membership = membership_.Save();
  for (const auto& [key, since] : lost_) j.lost.push_back(key);
  j.rejoined = rejoined_;
  j.last_checkpoint_step = last_checkpoint_step_;
  j.next_checkpoint_step = next_checkpoint_step_;
  j.committed_positions = committed_positions_;
  j.released_barriers = released_barriers_;
  j.best_model = best_model_;
  j.progress = progress_.Export();
  {
    std::lock_guard<std::mutex> lock(journal_mutex_);
    journal_pending_ = std::move(j);
  }
  journal_wake_.notify_all();
}

void Scheduler::JournalLoop() {
  bool warned = false;
  std::unique_lock<std::mutex> lock(journal_mutex_);
  for (;;) {
    journal_wake_.wait(lock, [this] { return journal_pending_.has_value() || journal_stop_; });
    if (!journal_pending_) return;  // stopping, nothing left to write
    SchedulerJournal j = std::move(*journal_pending_);
    journal_pending_.reset();
    lock.unlock();
    Status s = WriteSchedulerJournal(*fs_, journal_path_, j);
    if (!s.ok() && !warned) {
      warned = true;
      LOG(WARNING) << "scheduler: cannot write the journal (a restarted scheduler could not go on): " << s;
    }
    lock.lock();
  }
}

Status Scheduler::CheckGenerationLocked(const IncomingMessage& request, NodeKey key) const {
  const uint64_t generation = request.envelope().getSenderGeneration();
  if (generation == 0) return Status::OK();
  const NodeRecord* holder = membership_.Find(key.role, key.rank);
  if (holder != nullptr && holder->generation == generation) return Status::OK();
  return NotFound(Describe(key) + " of generation " + std::to_string(generation) +
                  " is fenced: it was declared lost" +
                  (holder ? " and replaced by generation " + std::to_string(holder->generation) : "") +
                  "; a stale process must not act in the job");
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
  if (c.reporting > 0 && c.done == c.reporting) s.epochs = std::min<int>(s.epochs, static_cast<int>(c.epoch) + 1);
  s.best_epoch = static_cast<int>(c.eval_epoch);  // the metrics below are that epoch's
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (best_model_ && static_cast<int>(best_model_->epoch) == s.best_epoch) {
      s.best_checkpoint = CheckpointDir(spec.checkpoint.dir, best_model_->checkpoint_id);
    }
  }
  s.stopped_early = s.epochs < spec.training.epochs;
  s.samples = c.samples;
  s.skipped_records = c.bad_records;
  s.train_seconds = c.train_seconds;
  if (s.train_seconds <= 0) {
    // Workers that do not report their training time: the scheduler's wall clock.
    std::lock_guard<std::mutex> lock(mutex_);
    s.train_seconds = Seconds(clock_->Now() - formed_at_);
  }
  s.samples_per_sec = s.train_seconds > 0 ? static_cast<double>(s.samples) / s.train_seconds : 0;
  s.history = progress_.History();
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
