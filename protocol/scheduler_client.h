// SchedulerClient: what a server or worker uses to join the cluster: register (rank and
// cluster view back), heartbeats from a background thread, barriers, progress reports,
// and the shutdown the scheduler sends at the end of the job (or when it fails).
//
//   SchedulerClientOptions o{.scheduler = "tcp://sched:7000", .role = proto::Role::WORKER,
//                            .spec_hash = spec.hash};
//   auto client = SchedulerClient::Create(o);             // a worker: own control endpoint
//   StatusOr<ClusterInfo> cluster = (*client)->Register(); // blocks until all nodes are in
//   MTPS_RETURN_IF_ERROR((*client)->Barrier("start"));
//   (*client)->ReportProgress(report);
//   if ((*client)->shutdown_notice()) ...                   // or OnShutdown(callback)
//
// A server that already serves an RpcServer passes its address in `address` and calls
// InstallHandlers(rpc) before rpc.Start(), so the scheduler's shutdown arrives there; a
// node without one leaves `address` empty and the client serves a small control endpoint
// of its own. Shutdown comes from three places, whichever is first: the scheduler's
// shutdown message, a heartbeat reply saying the job is stopping or failed, or no
// heartbeat answer from the scheduler for `scheduler_timeout` (the scheduler is gone).
//
// A scheduler that dies and is restarted from its journal (same address) is waited for:
// registration and progress reports are sent again on timeouts, heartbeats go on failing
// until `scheduler_timeout`, and a heartbeat reply from a new incarnation of the scheduler
// makes a waiting Barrier() arrive again (the old scheduler's waiting barriers died with it).
//
// Thread-safety: all methods may be called from any thread. The shutdown callback runs
// once, on a client thread; it must not block for long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/mtps.capnp.h"
#include "base/env.h"
#include "base/status.h"
#include "protocol/transport.h"

namespace mtps::scheduler {

struct SchedulerClientOptions {
  std::string scheduler;                 // "tcp://host:port" of the scheduler
  proto::Role role = proto::Role::WORKER;
  std::string address;                   // where this node serves; empty = own control endpoint
  std::string control_bind_host = "127.0.0.1";  // interface the own control endpoint binds
  std::string control_host = "127.0.0.1";       // and the host it advertises to the scheduler
  std::string http_address;              // "host:port" of this node's /healthz and /metrics
  uint64_t spec_hash = 0;
  int requested_rank = -1;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds register_timeout{120000};
  std::chrono::milliseconds scheduler_timeout{30000};
  std::chrono::milliseconds call_timeout{10000};  // progress reports
  // Registration and progress reports are sent again after this long without an answer
  // (the scheduler may be restarting), until register_timeout / scheduler_timeout.
  std::chrono::milliseconds retry_interval{3000};
  // env.clock measures scheduler_timeout (the scheduler is lost after that long without a
  // heartbeat answer); a test's ManualClock makes the scheduler lost without waiting.
  Env env;
};

struct NodeAddress {
  int rank = -1;
  std::string address;
  std::string http_address;
  uint64_t generation = 0;  // of the process holding the rank (fencing)
};

struct TaskReport {
  std::string name;
  double loss = 0;
  double auc = std::numeric_limits<double>::quiet_NaN();
  double logloss = std::numeric_limits<double>::quiet_NaN();
  double mse = std::numeric_limits<double>::quiet_NaN();
};

// The job's evaluation of one epoch, as the scheduler recorded it.
struct EpochEvaluation {
  uint32_t epoch = 0;
  std::vector<TaskReport> tasks;  // auc, logloss, mse
};

// The cluster as the scheduler announced it at registration.
struct ClusterInfo {
  int rank = -1;              // this node's
  uint64_t generation = 0;    // this registration's (fencing)
  bool rejoined = false;      // registered while the job ran: the replacement of a lost node
  // A rejoined worker: where the last committed checkpoint recorded its data stream.
  bool resume = false;
  uint32_t resume_epoch = 0;
  uint64_t resume_records = 0;
  uint64_t resume_step = 0;
  uint64_t view_epoch = 0;
  uint64_t spec_hash = 0;
  uint64_t incarnation = 0;   // of the scheduler that answered
  // A rejoined worker: every epoch the job evaluated before it started, oldest first.
  std::vector<EpochEvaluation> evaluations;
  std::vector<NodeAddress> servers;  // by rank; keys go to JumpConsistentHash(key, servers);
                                     // a lost one has rank -1 and an empty address
  std::vector<NodeAddress> workers;  // by rank
};

struct ShutdownNotice {
  std::string reason;
  bool failed = false;  // the job failed: exit nonzero
  bool retryable = false;  // failed, but a restart may cure it (protocol/exit_codes.h)

  // What a node's run ends with: OK, a failure a restart may cure (Unavailable), or a
  // permanent one (FailedPrecondition), so that its exit status tells Kubernetes which.
  Status Outcome() const {
    if (!failed) return Status::OK();
    return retryable ? Unavailable("the job stopped: " + reason)
                     : FailedPrecondition("the job failed: " + reason);
  }
};

// See ProgressTracker (scheduler/progress_tracker.h) for what each phase carries.
struct ProgressReport {
  std::string phase = "train";   // "train", "eval" or "done"
  uint32_t epoch = 0;
  uint64_t step = 0;
  uint64_t samples = 0;          // since the job began, this worker
  double samples_per_sec = 0;
  double train_seconds = 0;      // time spent training since the job began
  uint64_t data_position = 0;
  uint64_t bad_records = 0;      // skipped since the job began, this worker
  std::vector<TaskReport> tasks;
  std::string reason;            // phase "failed": why this worker gives up
  // Phase "train": this report closes `epoch` (tasks' loss is its mean training loss).
  bool epoch_end = false;
  uint64_t epoch_samples = 0;    // with epoch_end: trained in `epoch`, this worker
  double epoch_seconds = 0;      // with epoch_end: spent training `epoch`, this worker
  uint64_t epoch_records = 0;    // records in one epoch of the whole training split; 0: unknown
  bool best_so_far = false;      // phase "eval": the best epoch so far (its model is kept)
};

class SchedulerClient {
 public:
  static StatusOr<std::unique_ptr<SchedulerClient>> Create(SchedulerClientOptions options);
  ~SchedulerClient();  // Stop()s

  // Registers the shutdown handler on the node's own RpcServer (before it Start()s).
  void InstallHandlers(RpcServer& rpc);
  // Blocks until the scheduler answers (all nodes in) or register_timeout; then starts
  // heartbeats. The scheduler's refusal (e.g. another spec hash) comes back as is.
  StatusOr<ClusterInfo> Register();
  // Waits until `count` nodes (0 = all) arrived at barrier `name`, or `timeout`.
  Status Barrier(const std::string& name, uint32_t count = 0,
                 std::chrono::milliseconds timeout = std::chrono::minutes(10));
  Status ReportProgress(const ProgressReport& report);
  // What the next heartbeats say about this node.
  void SetState(proto::NodeState state, uint64_t step);

  void OnShutdown(std::function<void(const ShutdownNotice&)> callback);
  // `callback` gets every newer view (a node lost, a replacement's address), on the
  // heartbeat thread, which fetches it when a heartbeat reply shows a newer view epoch.
  void OnViewChange(std::function<void(const ClusterInfo&)> callback);
  // Asks the scheduler for the current view (rank and generation stay this node's).
  StatusOr<ClusterInfo> FetchView();
  // Nonzero while the scheduler asks workers to pause for checkpoint N's cut (from the
  // latest heartbeat reply): drain pushes, report the position, Barrier("checkpoint-N").
  uint64_t checkpoint_pause() const;
  // The scheduler's incarnation as its latest reply told (0 before any).
  uint64_t incarnation() const;
  std::optional<ShutdownNotice> shutdown_notice() const;
  std::optional<ShutdownNotice> WaitForShutdown(std::chrono::milliseconds timeout);
  // Heartbeat exchanges finished (answered or failed) since Register(). A test that moves
  // an injected clock waits for the next ones instead of sleeping: the second exchange to
  // finish after a call to heartbeats() was sent after it.
  uint64_t heartbeats() const;
  // Waits until heartbeats() >= count or `timeout`; returns whether it got there.
  bool WaitForHeartbeats(uint64_t count, std::chrono::milliseconds timeout);

  // Stops heartbeats and the control endpoint. Idempotent.
  void Stop();
  int rank() const;
  const std::string& address() const { return options_.address; }

 private:
  explicit SchedulerClient(SchedulerClientOptions options);
  void HeartbeatLoop();
  void Notify(ShutdownNotice notice);
  void HandleShutdown(IncomingMessage& request, Responder responder);

  SchedulerClientOptions options_;
  std::unique_ptr<RpcClient> rpc_;
  std::unique_ptr<RpcServer> control_;  // when the node has no RpcServer of its own

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int rank_ = -1;                                 // GUARDED_BY(mutex_)
  proto::NodeState state_ = proto::NodeState::RUNNING;  // GUARDED_BY(mutex_)
  uint64_t step_ = 0;                             // GUARDED_BY(mutex_)
  bool stopping_ = false;                         // GUARDED_BY(mutex_)
  std::optional<ShutdownNotice> notice_;          // GUARDED_BY(mutex_)
  std::function<void(const ShutdownNotice&)> on_shutdown_;  // GUARDED_BY(mutex_)
  std::function<void(const ClusterInfo&)> on_view_;        // GUARDED_BY(mutex_)
  uint64_t generation_ = 0;                       // GUARDED_BY(mutex_)
  uint64_t view_epoch_ = 0;                       // GUARDED_BY(mutex_)
  uint64_t checkpoint_pause_ = 0;                 // GUARDED_BY(mutex_)
  uint64_t incarnation_ = 0;  // of the scheduler, from its latest reply  GUARDED_BY(mutex_)
  uint64_t heartbeats_done_ = 0;                  // GUARDED_BY(mutex_)
  std::thread heartbeats_;
};

}  // namespace mtps::scheduler
