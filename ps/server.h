// ps::Server: the request handlers of one parameter server — sparse pull/push, dense
// blocks, checkpoints, stats — over its sharded tables and dense block store.
//
//   MetricsRegistry metrics;
//   auto server = ps::Server::Create(job, {.rank = 0, .num_servers = 2, .shards = 4},
//                                    &metrics);
//   RpcServer rpc(TransportOptions{}, proto::Role::SERVER, 0);
//   (*server)->RegisterHandlers(rpc);
//   rpc.Bind("tcp://*:7000"); rpc.Start();
//
// Every request is checked before it touches state, and a bad one is answered with an
// error naming the values, counted, and forgotten: unknown table (NOT_FOUND), key and
// value blobs of the wrong length or dimension (INVALID_ARGUMENT), non-finite gradients
// (INVALID_ARGUMENT, the table untouched), a key or block that another server owns
// (FAILED_PRECONDITION naming the owner). Sparse keys belong to JumpConsistentHash(key,
// num_servers); dense blocks to DenseBlockOwner(id, num_servers) = id % num_servers.
//
// Values travel without extra copies: request keys and gradients are read in place from
// the received frames, and a pull's rows are written by the shard threads straight into
// the reply's Data field. A request's reply is sent when all its shard parts are done;
// in sync mode, when every worker's push of the step has been applied (the sum, once).
//
// Checkpoints: checkpointBegin writes one file per table plus the dense file into the
// request's directory and answers with their sizes and checksums; checkpointCommit marks
// the checkpoint whole by writing its manifest (WriteCheckpointManifest) when the server
// runs standalone — under a scheduler the scheduler writes it. Restore() loads the newest
// whole checkpoint under a root directory, refusing one written for another table spec.
// With checkpoint.full_every = N > 1 a table file is an increment over this server's
// previous checkpoint (the rows changed since) unless it is the N-th of its chain, that
// checkpoint was not committed here (aborted, or the server restarted), or the table lost
// track of its changes: then it is whole. The ack names each increment's base.
//
// Thread-safety: handlers run on the RpcServer's handler threads, replies may be sent
// from shard threads. Restore() must be called before the RpcServer starts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "base/status.h"
#include "protocol/transport.h"
#include "ps/checkpoint.h"
#include "base/checkpoint_manifest.h"
#include "base/env.h"
#include "ps/dense_block.h"
#include "ps/sharded_table.h"

namespace mtps::ps {

struct ServerOptions {
  int32_t rank = 0;
  int32_t num_servers = 1;
  int shards = 4;                   // shard threads that split each table's keys
  bool write_manifest = false;      // standalone: the server writes the manifest at commit
  // Workers in the cluster: a sync push must say exactly this many. 0 = not known
  // (standalone): at most kMaxSyncWorkers, which bounds what one push can make us hold.
  int32_t num_workers = 0;
  // The largest reply built for one request; a pull that would need more is refused
  // (RESOURCE_EXHAUSTED, naming the sizes) and ps::Client splits its requests below it.
  // Never above kMaxDataFieldBytes, the most one Cap'n Proto Data field can hold.
  size_t max_reply_bytes = size_t{256} << 20;
  // Checkpoint `id` is written to CheckpointDir(checkpoint_root, id); the directory a
  // checkpointBegin names is never used (a message must not choose where a server writes).
  // Empty: this server refuses checkpoints.
  std::string checkpoint_root;
  // Bytes all embedding tables of this server may hold together (0 = no limit). Past it no
  // new row is created (pulls of new keys get initial values, pushes to them are dropped)
  // and the refusals are counted in /metrics; rows that exist keep training.
  uint64_t memory_budget_bytes = 0;
  // The file system checkpoints are written to and restored from (tests: a failing disk).
  Env env;
};

// Sync steps of a server that does not know its cluster size accept at most this many.
inline constexpr int32_t kMaxSyncWorkers = 4096;

class Server {
 public:
  // `metrics` may be null; otherwise it must outlive the server.
  static StatusOr<std::unique_ptr<Server>> Create(const JobSpec& job, const ServerOptions& options,
                                                  MetricsRegistry* metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers a handler for every parameter-server request. Call before rpc.Start();
  // the server must outlive `rpc`'s handler threads.
  void RegisterHandlers(RpcServer& rpc);

  // Loads the newest checkpoint under `root` that has a manifest, every file checked
  // against the manifest's size and CRC32C first. A damaged checkpoint (DATA_LOSS) falls
  // back to the previous whole one, with a warning naming what was wrong. NOT_FOUND when
  // there is none; a file of another table spec fails and changes nothing. `restored`
  // (optional) receives the manifest of the checkpoint loaded.
  Status Restore(const std::string& root, CheckpointManifest* restored = nullptr);

  // Answers every sync step still waiting with `reason`; for shutdown.
  void CancelPendingSyncSteps(const Status& reason);

  ShardedTables& tables() { return *tables_; }
  DenseBlockStore& dense() { return *dense_; }
  const ServerOptions& options() const { return options_; }
  // Requests refused by validation (all kinds), since start.
  uint64_t rejected_requests() const;

 private:
  struct Metrics;
  struct PendingCheckpoint {
    std::string dir;
    uint64_t step = 0;
    std::vector<CheckpointFileInfo> files;
  };
  Server(const JobSpec& job, const ServerOptions& options, std::unique_ptr<ShardedTables> tables,
         MetricsRegistry* metrics);
  // Loads `candidate` (an entry of `all`): each table's whole file and the increments up
  // to the candidate's own, every file checked against its manifest first.
  Status RestoreFrom(const std::vector<WholeCheckpoint>& all, const WholeCheckpoint& candidate);

  void HandleSparsePull(IncomingMessage& request, Responder responder);
  void HandleSparsePush(IncomingMessage& request, Responder responder);
  void HandleDenseInit(IncomingMessage& request, Responder responder);
  void HandleDensePull(IncomingMessage& request, Responder responder);
  void HandleDensePush(IncomingMessage& request, Responder responder);
  void HandleCheckpointBegin(IncomingMessage& request, Responder responder);
  void HandleCheckpointCommit(IncomingMessage& request, Responder responder);
  void HandleStats(IncomingMessage& request, Responder responder);

  // Checks shared by pull and push: known table, whole keys, every key owned here.
  StatusOr<const TableSpec*> CheckTable(uint32_t table_id) const;
  Status CheckOwnedKeys(const uint64_t* keys, size_t n) const;
  Status CheckOwnedBlock(uint32_t block_id) const;
  // A sync push names the cluster's worker count and a rank inside it.
  Status CheckSyncPush(uint64_t step, int32_t worker_rank, uint32_t num_workers) const;
  // A reply of `bytes` fits under max_reply_bytes.
  Status CheckReplyBytes(size_t bytes, const std::string& what) const;
  // Counts a refusal (per table when `table_id` is known) and answers it.
  void Refuse(Responder& responder, int kind, const Status& status, int64_t table_id = -1);

  const JobSpec job_;
  const ServerOptions options_;
  MemoryBudget memory_budget_;  // outlives the tables, which report to it
  std::unique_ptr<ShardedTables> tables_;
  std::unique_ptr<DenseBlockStore> dense_;
  FileSystem* const fs_;  // options_.env.fs
  std::unique_ptr<Metrics> metrics_;
  // Requests refused here (validation) per table, beside the tables' own counts.
  std::unique_ptr<std::atomic<uint64_t>[]> table_rejected_;
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> requests_{0};

  std::mutex checkpoint_mutex_;  // one checkpoint at a time
  std::map<uint64_t, PendingCheckpoint> pending_checkpoints_;  // GUARDED_BY(checkpoint_mutex_)
  // Incremental checkpoints: the tables' change tracking starts from checkpoint
  // last_written_; an increment may build on it only once it was committed here.
  uint64_t last_written_ = 0;    // GUARDED_BY(checkpoint_mutex_)
  uint64_t last_committed_ = 0;  // GUARDED_BY(checkpoint_mutex_)
  std::vector<int> increments_in_chain_;  // per table, since its last whole file  GUARDED_BY(checkpoint_mutex_)
};

}  // namespace mtps::ps
