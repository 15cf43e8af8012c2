// DenseBlockStore: the dense parameter blocks (named float tensors) a server holds, each
// with its optimizer state, updated by each push (async) or once per step (sync).
//
//   DenseBlockStore store(job.training.dense_optimizer);
//   store.Init(/*id=*/3, "tower.ctr.w0", values, n);      // kept if block 3 exists
//   store.Pull(3, out, n);
//   store.Push(3, grad, n);                               // async: applied now
//   // sync: `done` runs for every worker once all num_workers gradients of `step` came;
//   // the sum (in worker-rank order) is applied once. `grad` must stay valid until then.
//   store.PushSync(3, grad, n, step, rank, num_workers, [](Status s) { /* reply */ });
//
// The math is RowOptimizer's: a block is one row of `size` floats, and its update count
// is the block's step count (Adam's bias correction).
//
// Errors: unknown id NOT_FOUND; a size that differs from the block's INVALID_ARGUMENT
// (both sizes named); non-finite gradient INVALID_ARGUMENT naming the element (nothing
// changes); sync misuse (rank outside [0, num_workers), the same rank twice for a step,
// num_workers differing from the step's first push) INVALID_ARGUMENT.
//
// Thread-safety: every method may be called from any thread; each block has its own lock
// (pushes to different blocks run in parallel). `done` callbacks run on the thread whose
// push completed the step, outside every lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "ps/optimizer.h"

namespace mtps::ps {

// One block as a checkpoint sees it.
struct DenseBlockSnapshot {
  uint32_t id = 0;
  std::string name;
  uint64_t update_count = 0;
  std::vector<float> values;
  std::vector<float> state;  // StateFloats(spec, values.size()) floats
};

class DenseBlockStore {
 public:
  using Done = std::function<void(Status)>;

  explicit DenseBlockStore(const OptimizerSpec& spec);
  ~DenseBlockStore();
  DenseBlockStore(const DenseBlockStore&) = delete;
  DenseBlockStore& operator=(const DenseBlockStore&) = delete;

  // Creates block `id` with these values and fresh optimizer state; when it exists
  // already it is kept (OK) if its size is `n`, else INVALID_ARGUMENT.
  Status Init(uint32_t id, const std::string& name, const float* values, size_t n);
  Status Pull(uint32_t id, float* out, size_t n) const;
  StatusOr<size_t> Size(uint32_t id) const;
  std::vector<uint32_t> BlockIds() const;

  // Async mode: applies `grad` at once. `steps` > 1: `grad` is the sum of that many steps'
  // gradients, applied as `steps` optimizer steps of their mean (a replay that keeps the
  // learning rate's and the moments' meaning per step; exact for sgd).
  Status Push(uint32_t id, const float* grad, size_t n, uint32_t steps = 1);
  // Sync mode: see the file comment. `done` is called exactly once (inline when refused).
  // `generation`: the sender's (SyncStepGate: a replacement's push takes a dead process's
  // place; a step applied already is answered OK at once with nothing applied).
  void PushSync(uint32_t id, const float* grad, size_t n, uint64_t step, int worker_rank,
                int num_workers, Done done, uint64_t generation = 0);
  // Answers every waiting sync step with `reason`, applying nothing.
  void CancelPendingSyncSteps(const Status& reason);

  // Checkpoint support: copies of all blocks (each under its own lock), and replacing
  // every block at once (state sizes are checked against the optimizer).
  std::vector<DenseBlockSnapshot> Snapshot() const;
  Status Restore(std::vector<DenseBlockSnapshot> blocks);

  const OptimizerSpec& spec() const { return optimizer_.spec(); }
  size_t num_blocks() const;

 private:
  struct Block;
  StatusOr<std::shared_ptr<Block>> Find(uint32_t id) const;
  // Answers the blocks' waiting sync steps with `reason`; `retire` also refuses every
  // later push to them (they were replaced by Restore).
  static void CancelBlocks(const std::vector<std::shared_ptr<Block>>& blocks,
                           const Status& reason, bool retire);

  RowOptimizer optimizer_;
  mutable std::shared_mutex map_mutex_;  // guards the map, not the blocks
  std::map<uint32_t, std::shared_ptr<Block>> blocks_;
};

// Checks that every value is finite and, when `limit` is given, within [-limit, limit];
// the error names `what`, the index and the value.
Status ValidateFinite(const float* values, size_t n, const char* what,
                      float limit = std::numeric_limits<float>::max());

}  // namespace mtps::ps
