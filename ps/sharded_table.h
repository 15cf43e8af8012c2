// ShardedTables: every sparse table of one server, its key space split across N shard
// threads so that each row has exactly one writer; requests fan out to the shards.
//
//   auto tables = ShardedTables::Create(job.tables, /*num_shards=*/4);
//   // From a request handler (any thread); buffers must stay valid until `done` runs:
//   (*tables)->PullAsync(table_id, keys, n, out, step, /*count_as_sighting=*/true,
//                        [](Status s) { /* reply */ });
//   (*tables)->PushAsync(table_id, keys, grads, n, step,
//                        [](StatusOr<PushResult> r) { /* reply */ });
//   // Synchronous training: done runs for every worker once all num_workers pushes of
//   // (table, step) arrived and their sum was applied.
//   (*tables)->PushSyncAsync(table_id, keys, grads, n, step, rank, num_workers, done);
//   Status s = (*tables)->Pull(table_id, keys, n, out, step, true);  // blocking forms
//
// A key's shard is ShardOfKey(key, num_shards) (bits independent of the server-level
// jump hash). Each shard thread owns one EmbeddingTable per table and takes work from
// its own queue, so the only shared state on the hot path is a per-shard queue lock and
// a per-request countdown.
//
// Requests are checked before anything is queued: an unknown table id is NOT_FOUND, a
// push with a non-finite gradient is INVALID_ARGUMENT (counted as rejected; nothing
// changes). In sync mode a worker rank outside [0, num_workers), a second push of the same
// (table, step, rank), or a num_workers that disagrees with the step's first push is
// INVALID_ARGUMENT. The sum of a sync step is formed in worker-rank order, so it is the
// same whatever order the pushes arrive in: the state equals a serial replay.
//
// Thread-safety: all public methods may be called from any number of threads. `done`
// callbacks run on a shard thread (or inline in the caller when the request is refused);
// they must not block for long and must not call the blocking forms.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "ps/embedding_table.h"
#include "ps/memory_budget.h"

namespace mtps::ps {

class ShardedTables {
 public:
  using PullDone = std::function<void(Status)>;
  using PushDone = std::function<void(StatusOr<PushResult>)>;

  // Starts `num_shards` threads, each with one EmbeddingTable per spec (the capacity of
  // each table is split evenly between the shards). Table ids are indexes into `specs`.
  static StatusOr<std::unique_ptr<ShardedTables>> Create(const std::vector<TableSpec>& specs,
                                                         int num_shards);
  // Finishes queued work, then stops the threads. Sync steps still waiting for workers
  // are answered CANCELLED.
  ~ShardedTables();
  ShardedTables(const ShardedTables&) = delete;
  // Pushes holding a gradient element beyond +-limit (training.max_gradient_abs) are
  // refused whole, like non-finite ones. Set before the first push.
  void set_max_gradient_abs(float limit) { max_gradient_abs_ = limit; }
  // Every table, and every table that ReplaceTable puts in later, creates rows only while
  // `budget` has room (see MemoryBudget). Set before serving; `budget` must outlive this.
  void set_memory_budget(MemoryBudget* budget);
  ShardedTables& operator=(const ShardedTables&) = delete;

  void PullAsync(uint32_t table_id, const uint64_t* keys, size_t n, float* out, uint64_t step,
                 bool count_as_sighting, PullDone done);
  void PushAsync(uint32_t table_id, const uint64_t* keys, const float* grads, size_t n,
                 uint64_t step, PushDone done);
  // The reply's `applied` counts this worker's gradients that met a row when the step was
  // applied, `dropped` those that did not. `generation`: the sender's (SyncStepGate: a
  // replacement's push takes a dead process's place; a step applied already is answered
  // at once with nothing applied).
  void PushSyncAsync(uint32_t table_id, const uint64_t* keys, const float* grads, size_t n,
                     uint64_t step, int worker_rank, int num_workers, PushDone done,
                     uint64_t generation = 0);

  // Blocking forms of the above (never call them from a `done` callback).
  Status Pull(uint32_t table_id, const uint64_t* keys, size_t n, float* out, uint64_t step,
              bool count_as_sighting);
  StatusOr<PushResult> Push(uint32_t table_id, const uint64_t* keys, const float* grads,
                            size_t n, uint64_t step);
  StatusOr<PushResult> PushSync(uint32_t table_id, const uint64_t* keys, const float* grads,
                                size_t n, uint64_t step, int worker_rank, int num_workers);

  // Answers every sync step still waiting for pushes with `reason` (e.g. a worker died)
  // and forgets their gradients. Nothing is applied.
  void CancelPendingSyncSteps(const Status& reason);

  // Runs fn(shard, table) for table `table_id` on each shard's own thread, one shard after
  // the other, and waits. Other tables and shards keep serving meanwhile. For
  // checkpoints, expiry sweeps and tests.
  Status ForEachShard(uint32_t table_id,
                      const std::function<void(int shard, EmbeddingTable& table)>& fn);
  // Swaps in new tables for `table_id` (one per shard, routed by ShardOfKey; all with the
  // table's spec), e.g. a loaded checkpoint. The old rows are freed.
  Status ReplaceTable(uint32_t table_id, std::vector<std::unique_ptr<EmbeddingTable>> shards);

  size_t num_tables() const { return specs_.size(); }
  int num_shards() const { return num_shards_; }
  // NOT_FOUND for an unknown id.
  StatusOr<const TableSpec*> Spec(uint32_t table_id) const;
  // Summed over the shards; callable from any thread without waiting for the shards.
  StatusOr<TableCounters> Counters(uint32_t table_id) const;

 private:
  struct Shard;
  struct Request;
  struct SyncStep;
  struct SyncGate;
  struct Task;
  ShardedTables(const std::vector<TableSpec>& specs, int num_shards);

  Status CheckTable(uint32_t table_id) const;
  // Groups the request's keys by shard and queues one task per non-empty part; takes
  // ownership of `request` (freed by the shard that finishes it last).
  void FanOut(std::unique_ptr<Request> request);
  void Enqueue(int shard, Task task);
  void ShardLoop(Shard* shard);
  void RunTask(Shard* shard, Task& task);
  void FinishRequestPart(Request* request);
  void ApplySyncPart(Shard* shard, SyncStep* step);
  void FinishSyncStep(SyncStep* step);
  Status RunOnShard(int shard, const std::function<void()>& fn);

  std::vector<TableSpec> specs_;
  float max_gradient_abs_ = std::numeric_limits<float>::max();
  MemoryBudget* budget_ = nullptr;
  int num_shards_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<SyncGate>> sync_;  // per table
  // Non-finite pushes refused before fan-out, per table (the shards never see them).
  std::unique_ptr<std::atomic<uint64_t>[]> rejected_;
};

}  // namespace mtps::ps
