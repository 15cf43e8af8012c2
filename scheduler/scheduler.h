// Scheduler: forms the cluster and runs the job's life. It answers registrations once
// every expected node is in (rank + cluster view), watches heartbeats, holds barriers,
// logs the workers' progress, takes checkpoints (every `checkpoint.interval_steps` and at
// the end), writes summary.json, and tells every node to shut down.
//
//   Scheduler scheduler(options, &clock, fs.get(), &registry);
//   StatusOr<int> port = scheduler.Start();      // RPC endpoint; 0 in options = any port
//   Status result = scheduler.Run();             // blocks until the job ends
//   // elsewhere (signal thread): scheduler.RequestStop("SIGTERM");
//
// Phases: forming (registrations; --register_timeout) → running (workers train and
// evaluate, reporting progress; checkpoints at interval) → finishing (all workers sent
// phase "done": final checkpoint, summary.json, shutdown to every node) → done.
//
// Lost nodes. Without recovery (recover_timeout 0) a node silent past the heartbeat
// timeout fails the job: every live node gets a shutdown marked failed, and Run() returns
// the error naming the node that went silent first. With recovery, a silent node is
// declared lost: its slot empties and the view epoch grows (nodes see it in heartbeat
// replies and fetch the view: a clusterView request); a process that registers while the
// job runs takes the lost rank (or, asking for a rank that is held, replaces and fences
// its holder), gets a new generation, and the new view publishes its address. Heartbeats
// carry the generation: an old generation is refused (NOT_FOUND), so a stale process
// (e.g. one resumed after SIGSTOP) learns that it is out and exits. A rank not replaced
// within recover_timeout fails the job.
//
// Restart. With checkpoint.dir set, the scheduler journals what it must not forget
// (scheduler/scheduler_journal.h) whenever it changes: at formation, a lost or rejoined
// node, a committed checkpoint, a released barrier, an evaluation or a worker done, a phase
// change. Started with `restore`, it reads the journal of a running job and goes on from
// it (same port): the nodes keep their ranks and generations, their heartbeats are
// answered again, and each reply carries the scheduler's incarnation, which grew, so nodes
// waiting at a barrier arrive again. A journal of a finished or failed job, or none, means
// a new job; a damaged one is refused.
//
// Stop (RequestStop, SIGTERM). While the job runs and writes checkpoints, the scheduler
// first takes one (or lets the one in flight end), then tells every node to stop and Run()
// returns CANCELLED; the journal still holds the running job, so a restart with `restore`
// goes on from that checkpoint. A stop while the final checkpoint is written lets the job
// finish. Periodic checkpoints come every checkpoint.interval_steps and/or
// interval_seconds, whichever is due first.
//
// The main loop never blocks: checkpoints run on their own thread while the loop keeps
// checking heartbeats, barriers and stop requests; a failure cancels the checkpoint in
// flight and every waiting barrier.
//
// Thread-safety: Start() then Run() from one thread; RequestStop(), health(), progress() and
// Summary() from any thread. Handlers run on the RPC server's threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "base/status.h"
#include "protocol/transport.h"
#include "base/file_system.h"
#include "base/checkpoint_manifest.h"
#include "scheduler/barrier_table.h"
#include "scheduler/checkpoint_coordinator.h"
#include "base/clock.h"
#include "scheduler/failure_detector.h"
#include "scheduler/membership.h"
#include "scheduler/progress_tracker.h"
#include "scheduler/run_summary.h"
#include "scheduler/scheduler_journal.h"

namespace mtps::scheduler {

struct SchedulerOptions {
  JobSpec spec;
  int num_servers = 1;
  int num_workers = 1;
  std::string endpoint = "tcp://0.0.0.0:0";  // where nodes reach the scheduler
  std::string run_dir;                       // summary.json goes here; empty = none
  std::chrono::milliseconds heartbeat_timeout{10000};
  std::chrono::milliseconds register_timeout{120000};
  std::chrono::milliseconds barrier_timeout{600000};
  std::chrono::milliseconds checkpoint_timeout{600000};
  // How long a lost node's rank waits for a replacement (the same rank registering again)
  // before the job fails; 0 = no recovery: a lost node fails the job at once.
  std::chrono::milliseconds recover_timeout{0};
  // Async checkpoints: how long the workers have to pause for the cut before the
  // checkpoint is given up (training goes on).
  std::chrono::milliseconds pause_timeout{30000};
  std::chrono::milliseconds shutdown_timeout{3000};  // for each node to acknowledge
  std::chrono::milliseconds progress_interval{10000};  // between progress log lines
  // Where a person watches the job (scheduler/progress_display.h): a live line when it is
  // a terminal, plain lines otherwise; -1: the log only. Not owned.
  int progress_fd = -1;
  std::chrono::milliseconds tick{50};                  // how often deadlines are checked
  // Go on from the journal under checkpoint.dir, when it holds a running job.
  bool restore = false;
};

class Scheduler {
 public:
  // `clock`, `fs` and `metrics` must outlive the scheduler.
  Scheduler(SchedulerOptions options, const Clock* clock, FileSystem* fs,
            MetricsRegistry* metrics);
  ~Scheduler();

  StatusOr<int> Start();
  // Runs the job to its end. OK when every worker finished and the summary was written;
  // the job's failure otherwise (a dead node, a registration timeout, a failed checkpoint,
  // or CANCELLED after RequestStop).
  Status Run();
  void RequestStop(const std::string& reason);

  // For /healthz: OK unless the job failed.
  Status health() const;
  const ProgressTracker& progress() const { return progress_; }
  // The run's summary from the progress so far (what summary.json gets at the end).
  RunSummary Summary() const;

 private:
  enum class Phase { kForming, kRunning, kFinishing, kDone, kFailed };
  struct PendingRegistration;

  void HandleRegister(IncomingMessage& request, Responder responder);
  void HandleHeartbeat(IncomingMessage& request, Responder responder);
  void HandleBarrier(IncomingMessage& request, Responder responder);
  void HandleProgress(IncomingMessage& request, Responder responder);
  void HandleClusterView(IncomingMessage& request, Responder responder);

  bool recovery_enabled() const { return options_.recover_timeout.count() > 0; }
  // The node's slot is emptied (view epoch grows), it is no longer watched or called, and
  // it must be replaced within recover_timeout.
  void DeclareLostLocked(NodeKey key, const std::string& why);  // requires mutex_
  // A server or worker registering while the job runs: the replacement of a lost one.
  void RejoinLocked(const NodeRecord& node, Responder responder);  // requires mutex_

  void CompleteFormationLocked();          // requires mutex_
  void FailLocked(const Status& reason);   // requires mutex_
  // Fails the job on a registration timeout or a silent node.
  void CheckDeadlines();
  Status RunCheckpoint(uint64_t step);
  // Starts RunCheckpoint(step) on checkpoint_thread_; its result lands in checkpoint_result_.
  void StartCheckpointLocked(uint64_t step);  // requires mutex_
  void JoinCheckpoint();
  // Every worker is paused for the cut, waiting at another barrier, done, or lost.
  bool AllWorkersPausedLocked() const;  // requires mutex_
  // Ends the cut: the paused workers go on.
  void ReleaseCutLocked();              // requires mutex_
  void ReleaseHeldLocked();             // requires mutex_: answers held_releases_
  void LeaveBarrierLocked(int rank);    // requires mutex_
  // `retryable`: the failure may pass on a restart, so nodes exit with a retryable status.
  void BroadcastShutdown(const std::string& reason, bool failed, bool retryable = false);
  proto::NodeState JobStateLocked() const;  // requires mutex_
  // Puts the journal's state back (Start() with options_.restore).
  Status RestoreFromJournal();
  // Snapshots the state into the journal, which journal_thread_ writes (fsync included)
  // outside mutex_, so a slow disk never holds up heartbeats. A write that fails is a
  // warning: the job goes on, a restart would not.
  void JournalLocked();  // requires mutex_
  void JournalLoop();
  // A request of a generation other than its rank's holder's (a fenced process):
  // NOT_FOUND naming both; OK for generation 0 (a sender that carries none).
  Status CheckGenerationLocked(const IncomingMessage& request, NodeKey key) const;  // requires mutex_

  const SchedulerOptions options_;
  const Clock* clock_;
  FileSystem* fs_;
  std::vector<std::string> task_names_;

  RpcServer rpc_;
  FailureDetector detector_;
  BarrierTable barriers_;
  ProgressTracker progress_;
  CheckpointCoordinator checkpoints_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  Phase phase_ = Phase::kForming;                                      // GUARDED_BY(mutex_)
  Status failure_;                                                     // GUARDED_BY(mutex_)
  Membership membership_;                                              // GUARDED_BY(mutex_)
  std::map<NodeKey, std::unique_ptr<PendingRegistration>> pending_;    // GUARDED_BY(mutex_)
  std::map<NodeKey, std::shared_ptr<RpcClient>> node_clients_;         // GUARDED_BY(mutex_)
  std::map<NodeKey, Clock::TimePoint> lost_;  // awaiting a replacement    GUARDED_BY(mutex_)
  std::optional<uint64_t> last_checkpoint_step_;                       // GUARDED_BY(mutex_)
  // The consistent cut of an async checkpoint (see RunCheckpoint).
  uint64_t cut_id_ = 0;                   // checkpoint id being cut, 0 none  GUARDED_BY(mutex_)
  std::map<int, std::shared_ptr<Responder>> cut_waiters_;  // paused workers  GUARDED_BY(mutex_)
  std::map<int, int> at_barrier_;  // workers' arrivals waiting at other barriers  GUARDED_BY(mutex_)
  std::set<std::string> released_barriers_;                            // GUARDED_BY(mutex_)
  // Barrier releases of workers held while a cut is in progress.
  std::vector<std::pair<int, std::shared_ptr<Responder>>> held_releases_;  // GUARDED_BY(mutex_)
  // The epoch whose end the next checkpoint must hold: it is the best so far (rank 0's
  // evaluation said so); the barrier after its evaluation is held until that checkpoint ends.
  std::optional<uint32_t> best_due_;              // GUARDED_BY(mutex_)
  std::optional<uint32_t> checkpoint_for_best_;   // the running checkpoint's  GUARDED_BY(mutex_)
  std::optional<BestModel> best_model_;           // the committed one, kept  GUARDED_BY(mutex_)
  std::set<NodeKey> rejoined_;            // replacements of lost nodes         GUARDED_BY(mutex_)
  // The newest step each worker rank said it finished (heartbeats): in sync mode a step a
  // worker finished was applied on every server, which is where a replacement goes on.
  std::map<int, uint64_t> finished_steps_;  // GUARDED_BY(mutex_)
  std::map<int, WorkerPosition> positions_;   // latest reported, by rank   GUARDED_BY(mutex_)
  std::vector<WorkerPosition> committed_positions_;  // of the last checkpoint  GUARDED_BY(mutex_)
  std::vector<NodeKey> dead_;                                          // GUARDED_BY(mutex_)
  Clock::TimePoint started_at_;
  Clock::TimePoint formed_at_;                                         // GUARDED_BY(mutex_)
  uint64_t next_checkpoint_step_ = 0;                                  // GUARDED_BY(mutex_)
  Clock::TimePoint last_checkpoint_started_;  // interval_seconds counts from here  GUARDED_BY(mutex_)
  // The checkpoint a stop request waits for: none asked, in flight.
  bool stop_checkpoint_running_ = false;                               // GUARDED_BY(mutex_)
  bool stop_requested_ = false;                                        // GUARDED_BY(mutex_)
  std::thread checkpoint_thread_;            // touched by Run()'s thread only
  bool checkpoint_running_ = false;                                    // GUARDED_BY(mutex_)
  std::optional<Status> checkpoint_result_;                            // GUARDED_BY(mutex_)
  std::string stop_reason_;                                            // GUARDED_BY(mutex_)
  uint64_t incarnation_ = 1;  // starts of this job's scheduler (journaled)  GUARDED_BY(mutex_)
  std::string journal_path_;  // empty: no checkpoint.dir, no journal
  // The newest snapshot not yet written; written in order, a newer one replacing an older.
  std::mutex journal_mutex_;
  std::condition_variable journal_wake_;
  std::optional<SchedulerJournal> journal_pending_;  // GUARDED_BY(journal_mutex_)
  bool journal_stop_ = false;                         // GUARDED_BY(journal_mutex_)
  std::thread journal_thread_;

  struct Metrics {
    Gauge* registered_servers;
    Gauge* registered_workers;
    Gauge* phase;
    Counter* heartbeats;
    Counter* barriers;
    Counter* progress_reports;
    Counter* refused;
    Counter* dead_nodes;
    Counter* checkpoints_ok;
    Counter* checkpoints_failed;
    Gauge* checkpoint_pause_ms;
    Gauge* samples;
    Gauge* samples_per_sec;
    std::map<std::string, Gauge*> train_loss;
  } metrics_;
};

}  // namespace mtps::scheduler
