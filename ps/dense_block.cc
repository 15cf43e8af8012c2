// DenseBlockStore: blocks in a map under a reader-writer lock (written only when blocks
// are created or restored), each block under its own mutex; sync steps gather one
// gradient pointer per worker in the block's SyncStepGate and sum them in rank order when
// the last one arrives.
#include "ps/dense_block.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "ps/finite_check.h"
#include "ps/sync_step_gate.h"

namespace mtps::ps {

struct DenseBlockStore::Block {
  struct SyncPart {  // one worker's push of a sync step
    const float* grad;
    Done done;
  };

  explicit Block(uint32_t block_id) : id(block_id), gate("dense block " + std::to_string(id)) {}

  std::mutex mu;
  const uint32_t id;
  std::string name;                      // immutable after creation
  std::vector<float> values;             // GUARDED_BY(mu); size immutable
  std::vector<float> state;              // GUARDED_BY(mu)
  uint64_t update_count = 0;             // GUARDED_BY(mu)
  bool retired = false;                  // GUARDED_BY(mu); replaced by Restore
  std::vector<float> sum;                // GUARDED_BY(mu); scratch of sync steps
  SyncStepGate<SyncPart> gate;           // closed once retired
};

Status ValidateFinite(const float* values, size_t n, const char* what, float limit) {
  const size_t i = FirstOutOfRange(values, n, limit);
  if (i == n) return Status::OK();
  if (std::isfinite(values[i]) && limit < std::numeric_limits<float>::max())
    return InvalidArgument(std::string(what) + " " + std::to_string(values[i]) + " at element " +
                           std::to_string(i) + " is beyond the limit of +-" +
                           std::to_string(limit) + " (training.max_gradient_abs)");
  return InvalidArgument(std::string("non-finite ") + what + " " + std::to_string(values[i]) +
                         " at element " + std::to_string(i));
}

DenseBlockStore::DenseBlockStore(const OptimizerSpec& spec) : optimizer_(spec) {}

DenseBlockStore::~DenseBlockStore() {
  CancelPendingSyncSteps(Cancelled("the parameter server is shutting down"));
}

StatusOr<std::shared_ptr<DenseBlockStore::Block>> DenseBlockStore::Find(uint32_t id) const {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  auto it = blocks_.find(id);
  if (it == blocks_.end()) {
    return NotFound("unknown dense block " + std::to_string(id) + " (" +
                    std::to_string(blocks_.size()) + " blocks on this server)");
  }
  return it->second;
}

namespace {

Status SizeMismatch(uint32_t id, const std::string& name, size_t have, size_t got) {
  return InvalidArgument("dense block " + std::to_string(id) + " ('" + name + "') has " +
                         std::to_string(have) + " values, the request has " + std::to_string(got));
}

Status Retired(uint32_t id) {
  return Unavailable("dense block " + std::to_string(id) + " was just restored; push again");
}

}  // namespace

Status DenseBlockStore::Init(uint32_t id, const std::string& name, const float* values, size_t n) {
  MTPS_RETURN_IF_ERROR(ValidateFinite(values, n, "initial value"));
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  auto it = blocks_.find(id);
  if (it != blocks_.end()) {
    const size_t have = it->second->values.size();  // immutable: no block lock needed
    return have == n ? Status::OK() : SizeMismatch(id, it->second->name, have, n);
  }
  auto block = std::make_shared<Block>(id);
  block->name = name;
  block->values.assign(values, values + n);
  block->state.resize(static_cast<size_t>(ps::StateFloats(spec(), static_cast<int>(n))));
  optimizer_.InitState(block->state.data(), static_cast<int>(n));
  blocks_.emplace(id, std::move(block));
  return Status::OK();
}

Status DenseBlockStore::Pull(uint32_t id, float* out, size_t n) const {
  MTPS_ASSIGN_OR_RETURN(std::shared_ptr<Block> block, Find(id));
  std::lock_guard<std::mutex> lock(block->mu);
  if (block->values.size() != n) return SizeMismatch(id, block->name, block->values.size(), n);
  std::copy(block->values.begin(), block->values.end(), out);
  return Status::OK();
}

StatusOr<size_t> DenseBlockStore::Size(uint32_t id) const {
  MTPS_ASSIGN_OR_RETURN(std::shared_ptr<Block> block, Find(id));
  return block->values.size();
}

std::vector<uint32_t> DenseBlockStore::BlockIds() const {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  std::vector<uint32_t> ids;
  for (const auto& [id, block] : blocks_) ids.push_back(id);
  return ids;
}

size_t DenseBlockStore::num_blocks() const {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  return blocks_.size();
}

Status DenseBlockStore::Push(uint32_t id, const float* grad, size_t n, uint32_t steps) {
  MTPS_ASSIGN_OR_RETURN(std::shared_ptr<Block> block, Find(id));
  if (block->values.size() != n) return SizeMismatch(id, block->name, block->values.size(), n);
  MTPS_RETURN_IF_ERROR(
      ValidateFinite(grad, n, "gradient").WithContext("dense block " + std::to_string(id)));
  if (steps > static_cast<uint32_t>(kMaxDenseSyncEvery)) {
    return InvalidArgument("dense block " + std::to_string(id) + ": a push of " + std::to_string(steps) +
                           " summed steps, more than " + std::to_string(kMaxDenseSyncEvery));
  }
  std::vector<float> mean;
  if (steps > 1) {
    mean.resize(n);
    const float scale = 1.0f / static_cast<float>(steps);
    for (size_t i = 0; i < n; ++i) mean[i] = grad[i] * scale;
    grad = mean.data();
  }
  std::lock_guard<std::mutex> lock(block->mu);
  if (block->retired) return Retired(id);
  for (uint32_t s = 0; s < std::max<uint32_t>(steps, 1); ++s) {
    ++block->update_count;
    optimizer_.Apply(block->values.data(), block->state.data(), grad, static_cast<int>(n),
                     block->update_count);
  }
  return Status::OK();
}

void DenseBlockStore::PushSync(uint32_t id, const float* grad, size_t n, uint64_t step,
                               int worker_rank, int num_workers, Done done, uint64_t generation) {
  auto found = Find(id);
  if (!found.ok()) return done(found.status());
  std::shared_ptr<Block> block = std::move(found).value();
  if (block->values.size() != n) return done(SizeMismatch(id, block->name, block->values.size(), n));
  Status valid = ValidateFinite(grad, n, "gradient");
  if (!valid.ok()) return done(valid.WithContext("dense block " + std::to_string(id)));

  Block::SyncPart part{grad, std::move(done)};
  std::vector<Block::SyncPart> passed;
  StatusOr<std::vector<Block::SyncPart>> all =
      block->gate.Arrive(step, worker_rank, num_workers, part, generation, &passed);
  for (Block::SyncPart& p : passed) p.done(Status::OK());  // steps answered by a lost server
  if (SyncStepGate<Block::SyncPart>::AppliedAlready(all.status())) return part.done(Status::OK());  // a replay
  if (!all.ok()) return part.done(all.status());
  if (all->empty()) return;  // the other workers' pushes of the step are still to come
  {
    std::lock_guard<std::mutex> lock(block->mu);
    if (block->retired) {
      valid = Retired(id);  // restored while the step completed: nothing is applied
    } else {
      // Rank order: the sum does not depend on the order the pushes came in.
      block->sum.assign((*all)[0].grad, (*all)[0].grad + n);
      for (size_t r = 1; r < all->size(); ++r) {
        const float* g = (*all)[r].grad;
        for (size_t i = 0; i < n; ++i) block->sum[i] += g[i];
      }
      ++block->update_count;
      optimizer_.Apply(block->values.data(), block->state.data(), block->sum.data(),
                       static_cast<int>(n), block->update_count);
    }
  }
  for (Block::SyncPart& p : *all) p.done(valid);
}

void DenseBlockStore::CancelPendingSyncSteps(const Status& reason) {
  std::vector<std::shared_ptr<Block>> blocks;
  {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    for (const auto& [id, block] : blocks_) blocks.push_back(block);
  }
  CancelBlocks(blocks, reason, /*retire=*/false);
}

void DenseBlockStore::CancelBlocks(const std::vector<std::shared_ptr<Block>>& blocks,
                                   const Status& reason, bool retire) {
  for (const auto& block : blocks) {
    if (retire) {
      std::lock_guard<std::mutex> lock(block->mu);
      block->retired = true;
    }
    auto waiting = retire ? block->gate.Close(Retired(block->id)) : block->gate.TakeWaiting();
    for (auto& [step, parts] : waiting) {
      for (Block::SyncPart& p : parts) {
        p.done(reason.WithContext("dense block " + std::to_string(block->id) + " sync step " +
                                  std::to_string(step)));
      }
    }
  }
}

std::vector<DenseBlockSnapshot> DenseBlockStore::Snapshot() const {
  std::vector<std::shared_ptr<Block>> blocks;
  {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    for (const auto& [id, block] : blocks_) blocks.push_back(block);
  }
  std::vector<DenseBlockSnapshot> out;
  out.reserve(blocks.size());
  for (const auto& block : blocks) {
    std::lock_guard<std::mutex> lock(block->mu);
    out.push_back({block->id, block->name, block->update_count, block->values, block->state});
  }
  return out;
}

Status DenseBlockStore::Restore(std::vector<DenseBlockSnapshot> snapshots) {
  std::map<uint32_t, std::shared_ptr<Block>> fresh;
  for (DenseBlockSnapshot& s : snapshots) {
    const size_t want = static_cast<size_t>(ps::StateFloats(spec(), static_cast<int>(s.values.size())));
    if (s.state.size() != want) {
      return InvalidArgument("dense block " + std::to_string(s.id) + " ('" + s.name + "') has " +
                             std::to_string(s.state.size()) + " state floats, " +
                             OptimizerTypeName(spec().type) + " needs " + std::to_string(want));
    }
    auto block = std::make_shared<Block>(s.id);
    block->name = std::move(s.name);
    block->values = std::move(s.values);
    block->state = std::move(s.state);
    block->update_count = s.update_count;
    if (!fresh.emplace(s.id, std::move(block)).second) {
      return InvalidArgument("dense block " + std::to_string(s.id) + " appears twice");
    }
  }
  {
    std::unique_lock<std::shared_mutex> lock(map_mutex_);
    blocks_.swap(fresh);
  }
  // `fresh` now holds the old blocks: answer whatever still waits on them.
  std::vector<std::shared_ptr<Block>> old;
  for (auto& [id, block] : fresh) old.push_back(block);
  CancelBlocks(old, Cancelled("dense blocks were restored from a checkpoint"), /*retire=*/true);
  return Status::OK();
}

}  // namespace mtps::ps
