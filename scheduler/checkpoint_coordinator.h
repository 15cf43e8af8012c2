// CheckpointCoordinator: one cluster-wide checkpoint. Every server is asked to write its
// files (checkpointBegin); only when all have acknowledged, naming their files, does the
// scheduler write the manifest (atomically: temporary name, fsync, rename), and only then
// tells the servers to commit. A checkpoint without a manifest is not a checkpoint, so a
// failure anywhere before the manifest leaves nothing that a restore would pick.
//
//   CheckpointCoordinator checkpoints(fs.get(), {.root = spec.checkpoint.dir, .keep = 2});
//   StatusOr<std::string> dir = checkpoints.Run(server_clients, NextCheckpointId(root), step);
//
// Every wait is bounded (ack_timeout, commit_timeout) and ends early on Cancel(), so a
// job that fails while a checkpoint is being written does not wait for it.
// Thread-safety: one Run() at a time; Cancel() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "protocol/transport.h"
#include "base/file_system.h"
#include "base/checkpoint_manifest.h"

namespace mtps::scheduler {

struct CheckpointOptions {
  std::string root;                               // spec.checkpoint.dir
  // Whole checkpoints kept; older ones are removed unless a kept one's increments build
  // on them (its chain back to the full files always stays).
  int keep = 2;
  std::chrono::milliseconds ack_timeout{600000};  // for every server to write its files
  std::chrono::milliseconds commit_timeout{30000};
};

// One more than the largest id of a checkpoint directory under `root` (1 when none).
uint64_t NextCheckpointId(const std::string& root);

class CheckpointCoordinator {
 public:
  CheckpointCoordinator(FileSystem* fs, CheckpointOptions options);

  // `servers[r]` talks to the server of rank r. Returns the checkpoint's directory.
  // Errors name the server and its reason; no manifest is written then.
  StatusOr<std::string> Run(const std::vector<RpcClient*>& servers, uint64_t id, uint64_t step,
                            const std::vector<WorkerPosition>& positions = {});
  // Makes the running Run() (and every later one) give up at once with `reason`.
  void Cancel(const Status& reason);
  // Makes the running (or next) Run() give up (e.g. a server it waits on was lost);
  // ClearAbandon() before a Run() that should not see an earlier one.
  void Abandon(const Status& reason);
  void ClearAbandon();
  // Retention keeps checkpoint `id` (with its chain) whatever its age: the best epoch's
  // model. One at a time; 0 keeps none.
  void KeepAlways(uint64_t id) { kept_always_ = id; }

 private:
  void RemoveOldCheckpoints();
  // The reply, or the cancellation reason as soon as Cancel() was called.
  StatusOr<IncomingMessage> Await(std::future<StatusOr<IncomingMessage>>& reply);

  std::mutex cancel_mutex_;
  std::optional<Status> cancelled_;  // GUARDED_BY(cancel_mutex_)
  std::optional<Status> abandoned_;  // this Run() only       GUARDED_BY(cancel_mutex_)

  FileSystem* fs_;
  CheckpointOptions options_;
  std::atomic<uint64_t> kept_always_{0};
};

}  // namespace mtps::scheduler
