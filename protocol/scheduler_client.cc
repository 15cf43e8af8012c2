// SchedulerClient: registration, the heartbeat thread, barriers, progress reports and the
// three ways a shutdown reaches a node.
#include "protocol/scheduler_client.h"

#include <unistd.h>

#include <algorithm>
#include <future>

#include <glog/logging.h>

namespace mtps::scheduler {

namespace {

using Kind = proto::Envelope::Body;

std::string Hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

Status CallStatus(const StatusOr<IncomingMessage>& reply) {
  return reply.ok() ? ReplyStatus(*reply) : reply.status();
}

ClusterInfo ViewInfo(proto::ClusterView::Reader view) {
  ClusterInfo info;
  info.view_epoch = view.getEpoch();
  info.spec_hash = view.getSpecHash();
  for (auto node : view.getServers()) {
    info.servers.push_back({node.getRank(), node.getAddress(), node.getHttpAddress(), node.getGeneration()});
  }
  for (auto node : view.getWorkers()) {
    info.workers.push_back({node.getRank(), node.getAddress(), node.getHttpAddress(), node.getGeneration()});
  }
  return info;
}

// Sends a request again after `retry_interval` without an answer (the same request id, so a
// late answer to an earlier attempt still completes the call), for at most `limit` in all.
CallOptions Retrying(std::chrono::milliseconds retry_interval, std::chrono::milliseconds limit) {
  const auto every = std::max(std::chrono::milliseconds(1), std::min(retry_interval, limit));
  return {.timeout = every, .max_attempts = static_cast<int>(std::max<int64_t>(1, limit / every))};
}

}  // namespace

SchedulerClient::SchedulerClient(SchedulerClientOptions options) : options_(std::move(options)) {}

StatusOr<std::unique_ptr<SchedulerClient>> SchedulerClient::Create(SchedulerClientOptions options) {
  if (options.role != proto::Role::SERVER && options.role != proto::Role::WORKER) {
    return InvalidArgument("a scheduler client must be a server or a worker");
  }
  std::unique_ptr<SchedulerClient> client(new SchedulerClient(std::move(options)));
  SchedulerClientOptions& o = client->options_;
  // Every request carries the job id (the spec hash): the scheduler refuses others'.
  MTPS_ASSIGN_OR_RETURN(client->rpc_,
                        RpcClient::Connect(o.scheduler, o.role, -1, {.job_id = o.spec_hash}));
  if (o.address.empty()) {
    client->control_ = std::make_unique<RpcServer>(
        TransportOptions{.handler_threads = 1, .job_id = o.spec_hash}, o.role, -1);
    client->InstallHandlers(*client->control_);
    MTPS_ASSIGN_OR_RETURN(int port, client->control_->Bind("tcp://" + o.control_bind_host + ":0"));
    MTPS_RETURN_IF_ERROR(client->control_->Start());
    o.address = "tcp://" + o.control_host + ":" + std::to_string(port);
  }
  return client;
}

SchedulerClient::~SchedulerClient() { Stop(); }

void SchedulerClient::InstallHandlers(RpcServer& rpc) {
  rpc.Handle(Kind::SHUTDOWN, [this](IncomingMessage& m, Responder r) { HandleShutdown(m, std::move(r)); });
}

void SchedulerClient::HandleShutdown(IncomingMessage& request, Responder responder) {
  auto shutdown = request.envelope().getBody().getShutdown();
  ShutdownNotice notice{shutdown.getReason(), shutdown.getFailed(), shutdown.getRetryable()};
  responder.SendAck();
  Notify(std::move(notice));
}

StatusOr<ClusterInfo> SchedulerClient::Register() {
  auto request = rpc_->NewRequest();
  auto reg = request->body().initRegister();
  reg.setRole(options_.role);
  reg.setAddress(options_.address);
  reg.setHttpAddress(options_.http_address);
  reg.setSpecHash(options_.spec_hash);
  reg.setRequestedRank(options_.requested_rank);
  reg.setHostname(Hostname());
  reg.setPid(static_cast<uint32_t>(getpid()));
  // A registration is answered when the whole cluster is in; asking again (a scheduler
  // restarting, a lost request) gets the same rank.
  StatusOr<IncomingMessage> reply =
      rpc_->Call(std::move(request), Retrying(options_.retry_interval, options_.register_timeout)).get();
  Status status = CallStatus(reply);
  if (!status.ok()) return status.WithContext("registering with the scheduler at " + options_.scheduler);
  auto body = reply->envelope().getBody();
  if (body.which() != Kind::REGISTER_REPLY) {
    return Internal("the scheduler at " + options_.scheduler + " answered register with another kind");
  }
  auto answer = body.getRegisterReply();
  ClusterInfo info = ViewInfo(answer.getView());
  info.rank = answer.getRank();
  info.generation = answer.getGeneration();
  info.rejoined = answer.getRejoined();
  info.resume = answer.getResume();
  info.resume_epoch = answer.getResumeEpoch();
  info.resume_records = answer.getResumeRecords();
  info.resume_step = answer.getResumeStep();
  info.incarnation = answer.getIncarnation();
  for (auto evaluation : answer.getEvaluations()) {
    EpochEvaluation& e = info.evaluations.emplace_back();
    e.epoch = evaluation.getEpoch();
    for (auto task : evaluation.getTasks()) {
      e.tasks.push_back({.name = task.getName(), .auc = task.getAuc(), .logloss = task.getLogloss(),
                         .mse = task.getMse()});
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rank_ = info.rank;
    generation_ = info.generation;
    view_epoch_ = info.view_epoch;
    incarnation_ = info.incarnation;
    if (heartbeats_.joinable() || stopping_) return info;
  }
  rpc_->set_rank(info.rank);
  rpc_->set_generation(info.generation);
  if (control_) control_->set_rank(info.rank);
  heartbeats_ = std::thread([this] { HeartbeatLoop(); });
  return info;
}

Status SchedulerClient::Barrier(const std::string& name, uint32_t count,
                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t sent_to = 0;
  auto arrive = [&] {
    sent_to = incarnation();
    auto request = rpc_->NewRequest();
    auto barrier = request->body().initBarrier();
    barrier.setName(name);
    barrier.setCount(count);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return rpc_->Call(std::move(request), {.timeout = std::max(left, std::chrono::milliseconds(1))});
  };
  auto reply = arrive();
  // A shutdown notice (the scheduler ended the job, or is gone) ends the wait at once:
  // the barrier would never complete. A restarted scheduler knows nothing of this wait:
  // arrive again.
  constexpr auto kPoll = std::chrono::milliseconds(20);
  while (reply.wait_for(kPoll) != std::future_status::ready) {
    if (std::optional<ShutdownNotice> notice = shutdown_notice()) {
      return Cancelled("barrier '" + name + "' abandoned: " + notice->reason);
    }
    if (incarnation() != sent_to) {
      LOG(INFO) << "scheduler client: the scheduler restarted; arriving at barrier '" << name << "' again";
      reply = arrive();
    }
  }
  return CallStatus(reply.get()).WithContext("barrier '" + name + "'");
}

Status SchedulerClient::ReportProgress(const ProgressReport& report) {
  auto request = rpc_->NewRequest();
  auto progress = request->body().initProgress();
  progress.setPhase(report.phase);
  progress.setEpoch(report.epoch);
  progress.setStep(report.step);
  progress.setSamples(report.samples);
  progress.setSamplesPerSec(report.samples_per_sec);
  progress.setTrainSeconds(report.train_seconds);
  progress.setDataPosition(report.data_position);
  progress.setBadRecords(report.bad_records);
  progress.setReason(report.reason);
  progress.setEpochEnd(report.epoch_end);
  progress.setEpochSamples(report.epoch_samples);
  progress.setEpochSeconds(report.epoch_seconds);
  progress.setEpochRecords(report.epoch_records);
  progress.setBestSoFar(report.best_so_far);
  auto tasks = progress.initTasks(report.tasks.size());
  for (size_t i = 0; i < report.tasks.size(); ++i) {
    tasks[i].setName(report.tasks[i].name);
    tasks[i].setLoss(report.tasks[i].loss);
    tasks[i].setAuc(report.tasks[i].auc);
    tasks[i].setLogloss(report.tasks[i].logloss);
    tasks[i].setMse(report.tasks[i].mse);
  }
  return CallStatus(rpc_->Call(std::move(request), Retrying(options_.retry_interval,
                                                          std::max(options_.call_timeout,
                                                                   options_.scheduler_timeout)))
                        .get())
      .WithContext("progress report");
}

StatusOr<ClusterInfo> SchedulerClient::FetchView() {
  auto request = rpc_->NewRequest();
  request->body().initClusterView();
  StatusOr<IncomingMessage> reply = rpc_->Call(std::move(request), {.timeout = options_.call_timeout}).get();
  MTPS_RETURN_IF_ERROR(CallStatus(reply).WithContext("fetching the cluster view"));
  if (reply->envelope().getBody().which() != Kind::CLUSTER_VIEW) {
    return Internal("the scheduler answered a view request with another kind");
  }
  ClusterInfo info = ViewInfo(reply->envelope().getBody().getClusterView());
  std::lock_guard<std::mutex> lock(mutex_);
  info.rank = rank_;
  info.generation = generation_;
  return info;
}

uint64_t SchedulerClient::incarnation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return incarnation_;
}

uint64_t SchedulerClient::checkpoint_pause() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return checkpoint_pause_;
}

void SchedulerClient::OnViewChange(std::function<void(const ClusterInfo&)> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_view_ = std::move(callback);
}

void SchedulerClient::SetState(proto::NodeState state, uint64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = state;
  step_ = step;
}

void SchedulerClient::HeartbeatLoop() {
  const Clock& clock = *options_.env.clock;
  auto last_answer = clock.Now();
  for (;;) {
    proto::NodeState state;
    uint64_t step;
    uint64_t generation;
    uint64_t known_epoch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, options_.heartbeat_interval, [this] { return stopping_; });
      if (stopping_ || notice_) return;
      state = state_;
      step = step_;
      generation = generation_;
      known_epoch = view_epoch_;
    }
    auto request = rpc_->NewRequest();
    auto beat = request->body().initHeartbeat();
    beat.setState(state);
    beat.setStep(step);
    beat.setGeneration(generation);
    const auto timeout = std::max(options_.heartbeat_interval, std::chrono::milliseconds(1000));
    StatusOr<IncomingMessage> reply = rpc_->Call(std::move(request), {.timeout = timeout}).get();
    const auto now = clock.Now();
    Status status = CallStatus(reply);
    // Counted once this exchange's outcome is settled, whichever way the body leaves.
    struct CountWhenSettled {
      SchedulerClient* self;
      ~CountWhenSettled() {
        std::lock_guard<std::mutex> lock(self->mutex_);
        ++self->heartbeats_done_;
        self->changed_.notify_all();
      }
    } count_when_settled{this};
    if (status.ok() && reply->envelope().getBody().which() == Kind::HEARTBEAT_REPLY) {
      last_answer = now;
      auto answer = reply->envelope().getBody().getHeartbeatReply();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        checkpoint_pause_ = answer.getCheckpointPause();
        if (answer.getIncarnation() != incarnation_) {
          LOG_IF(WARNING, incarnation_ != 0) << "scheduler client: the scheduler restarted (incarnation "
                                             << incarnation_ << " -> " << answer.getIncarnation() << ")";
          incarnation_ = answer.getIncarnation();
        }
      }
      if (answer.getJobState() == proto::NodeState::FAILED) {
        Notify({answer.getReason().size() ? std::string(answer.getReason())
                                          : "the scheduler reports that the job failed",
                true, answer.getRetryable()});
        return;
      }
      if (answer.getViewEpoch() > known_epoch) {
        StatusOr<ClusterInfo> view = FetchView();
        if (!view.ok()) {
          LOG(WARNING) << "scheduler client: " << view.status();
          continue;  // asked again after the next heartbeat
        }
        std::function<void(const ClusterInfo&)> callback;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          view_epoch_ = std::max(view_epoch_, view->view_epoch);
          callback = on_view_;
        }
        LOG(INFO) << "scheduler client: cluster view epoch " << view->view_epoch;
        if (callback) callback(*view);
      }
    } else if (status.code() == StatusCode::kNotFound) {
      // Fenced: a replacement under this rank restarts cleanly (a retryable exit).
      Notify({"the scheduler no longer counts this node as live: " + status.message(), true,
              /*retryable=*/true});
      return;
    } else if (now - last_answer > options_.scheduler_timeout) {
      Notify({"lost the scheduler at " + options_.scheduler + ": no heartbeat answer for " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - last_answer).count()) +
                  " s (" + status.ToString() + ")",
              true, /*retryable=*/true});
      return;
    }
  }
}

void SchedulerClient::Notify(ShutdownNotice notice) {
  std::function<void(const ShutdownNotice&)> callback;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (notice_) return;
    notice_ = notice;
    callback = on_shutdown_;
    changed_.notify_all();
  }
  LOG(INFO) << "scheduler client: shutdown (" << (notice.failed ? "failed" : "ok") << "): "
            << notice.reason;
  if (callback) callback(notice);
}

void SchedulerClient::OnShutdown(std::function<void(const ShutdownNotice&)> callback) {
  std::optional<ShutdownNotice> already;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    on_shutdown_ = callback;
    already = notice_;
  }
  if (already && callback) callback(*already);
}

std::optional<ShutdownNotice> SchedulerClient::shutdown_notice() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return notice_;
}

uint64_t SchedulerClient::heartbeats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return heartbeats_done_;
}

bool SchedulerClient::WaitForHeartbeats(uint64_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return heartbeats_done_ >= count; });
}

std::optional<ShutdownNotice> SchedulerClient::WaitForShutdown(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return notice_.has_value(); });
  return notice_;
}

int SchedulerClient::rank() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rank_;
}

void SchedulerClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (heartbeats_.joinable()) heartbeats_.join();
  if (control_) control_->Stop();
}

}  // namespace mtps::scheduler
