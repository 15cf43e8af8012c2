// ShardedTables: shard threads with private queues, one EmbeddingTable per (shard, table);
// requests are split by ShardOfKey and finished by whichever shard completes them last.
// Sync steps are gathered per table and applied by every shard in worker-rank order.
#include "ps/sharded_table.h"

#include <pthread.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "ps/key_hash.h"
#include "ps/row_index.h"
#include "ps/sync_step_gate.h"

namespace mtps::ps {
namespace {

constexpr int kMaxShards = 256;

// Set on a shard thread to the ShardedTables that owns it: blocking calls from there
// would wait on the thread itself.
thread_local const void* tls_shard_owner = nullptr;

}  // namespace

struct ShardedTables::Request {
  enum class Kind { kPull, kPush, kPushSync };
  Kind kind;
  uint32_t table_id;
  const uint64_t* keys;
  size_t n;
  float* out = nullptr;
  const float* grads = nullptr;
  uint64_t step;
  bool count_as_sighting = true;
  // Request positions grouped by shard: shard s owns positions[offsets[s], offsets[s+1]).
  std::vector<uint32_t> positions;
  std::vector<uint32_t> offsets;
  std::atomic<int> remaining{0};
  std::atomic<uint64_t> applied{0};
  std::atomic<uint64_t> dropped{0};
  PullDone pull_done;
  PushDone push_done;

  const uint32_t* part(int shard) const { return positions.data() + offsets[shard]; }
  size_t part_size(int shard) const { return offsets[shard + 1] - offsets[shard]; }
};

struct ShardedTables::SyncStep {
  uint32_t table_id;
  uint64_t step;
  std::vector<std::unique_ptr<Request>> by_rank;
  std::atomic<int> remaining_shards{0};
};

// One table's sync steps: each worker's push waits here until the whole step came.
struct ShardedTables::SyncGate : SyncStepGate<std::unique_ptr<Request>> {
  using SyncStepGate::SyncStepGate;
};

struct ShardedTables::Task {
  Request* request = nullptr;  // this shard's part of a pull or push
  SyncStep* sync = nullptr;    // this shard's part of a complete sync step
  std::function<void()> fn;    // RunOnShard
};

struct ShardedTables::Shard {
  int index = 0;
  // Only this shard's thread replaces a table, under table_mu, so that Counters() on
  // another thread never reads a table being destroyed. The shard thread reads without it.
  std::mutex table_mu;
  std::vector<std::unique_ptr<EmbeddingTable>> tables;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<Task> queue;  // GUARDED_BY(queue_mu)
  bool stopping = false;   // GUARDED_BY(queue_mu)

  // Scratch of sync steps, reused step after step (shard thread only).
  RowIndex sum_index{1024};
  std::vector<uint64_t> sum_keys;
  std::vector<float> sum_grads;
  std::vector<uint32_t> unique_of;
  std::vector<uint32_t> identity;
  std::vector<uint8_t> accepted;

  std::thread thread;
};

StatusOr<std::unique_ptr<ShardedTables>> ShardedTables::Create(const std::vector<TableSpec>& specs,
                                                               int num_shards) {
  if (num_shards < 1 || num_shards > kMaxShards) {
    return InvalidArgument("num_shards must be in [1, " + std::to_string(kMaxShards) + "], got " +
                           std::to_string(num_shards));
  }
  std::unique_ptr<ShardedTables> tables(new ShardedTables(specs, num_shards));
  for (int s = 0; s < num_shards; ++s) {
    Shard& shard = *tables->shards_[s];
    for (size_t t = 0; t < specs.size(); ++t) {
      auto table = EmbeddingTable::Create(specs[t], static_cast<uint32_t>(num_shards));
      if (!table.ok()) return table.status().WithContext("table " + std::to_string(t));
      shard.tables.push_back(std::move(table).value());
    }
  }
  for (auto& shard : tables->shards_) {
    Shard* raw = shard.get();
    raw->thread = std::thread([t = tables.get(), raw] { t->ShardLoop(raw); });
  }
  return tables;
}

ShardedTables::ShardedTables(const std::vector<TableSpec>& specs, int num_shards)
    : specs_(specs), num_shards_(num_shards), rejected_(new std::atomic<uint64_t>[specs.size()]) {
  for (size_t t = 0; t < specs.size(); ++t) {
    rejected_[t].store(0);
    sync_.push_back(std::make_unique<SyncGate>("table " + std::to_string(t)));
  }
  for (int s = 0; s < num_shards; ++s) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->index = s;
  }
}

ShardedTables::~ShardedTables() {
  CancelPendingSyncSteps(Cancelled("the parameter server is shutting down"));
  for (auto& shard : shards_) {
    {
      std::lock_guard<std::mutex> lock(shard->queue_mu);
      shard->stopping = true;
    }
    shard->queue_cv.notify_one();
  }
  for (auto& shard : shards_) {
    if (shard->thread.joinable()) shard->thread.join();
  }
}

Status ShardedTables::CheckTable(uint32_t table_id) const {
  if (table_id >= specs_.size()) {
    return NotFound("unknown table id " + std::to_string(table_id) + " (this server has " +
                    std::to_string(specs_.size()) + " tables)");
  }
  return Status::OK();
}

StatusOr<const TableSpec*> ShardedTables::Spec(uint32_t table_id) const {
  MTPS_RETURN_IF_ERROR(CheckTable(table_id));
  return &specs_[table_id];
}

void ShardedTables::Enqueue(int shard_index, Task task) {
  Shard& shard = *shards_[shard_index];
  {
    std::lock_guard<std::mutex> lock(shard.queue_mu);
    shard.queue.push_back(std::move(task));
  }
  shard.queue_cv.notify_one();
}

void ShardedTables::ShardLoop(Shard* shard) {
  tls_shard_owner = this;
  const std::string name = "ps-shard-" + std::to_string(shard->index);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  std::deque<Task> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(shard->queue_mu);
      shard->queue_cv.wait(lock, [shard] { return shard->stopping || !shard->queue.empty(); });
      if (shard->queue.empty()) return;  // stopping, and everything queued is done
      batch.swap(shard->queue);
    }
    for (Task& task : batch) RunTask(shard, task);
    batch.clear();
  }
}

void ShardedTables::RunTask(Shard* shard, Task& task) {
  if (task.fn) {
    task.fn();
    return;
  }
  if (task.sync != nullptr) {
    ApplySyncPart(shard, task.sync);
    return;
  }
  Request* r = task.request;
  EmbeddingTable& table = *shard->tables[r->table_id];
  const int s = shard->index;
  if (r->kind == Request::Kind::kPull) {
    table.PullSubset(r->keys, r->part(s), r->part_size(s), r->out, r->step, r->count_as_sighting);
  } else {
    const PushResult result = table.PushSubset(r->keys, r->part(s), r->part_size(s), r->grads, r->step);
    r->applied.fetch_add(result.applied, std::memory_order_relaxed);
    r->dropped.fetch_add(result.dropped, std::memory_order_relaxed);
  }
  FinishRequestPart(r);
}

void ShardedTables::FinishRequestPart(Request* request) {
  if (request->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::unique_ptr<Request> owned(request);  // the last part frees the request
  if (owned->kind == Request::Kind::kPull) {
    owned->pull_done(Status::OK());
  } else {
    owned->push_done(PushResult{owned->applied.load(std::memory_order_relaxed),
                                owned->dropped.load(std::memory_order_relaxed)});
  }
}

namespace {

// Fills request positions grouped by shard (a counting sort on ShardOfKey).
template <typename RequestT>
void GroupByShard(RequestT& r, int num_shards) {
  r.offsets.assign(num_shards + 1, 0);
  r.positions.resize(r.n);
  if (num_shards == 1) {
    for (size_t i = 0; i < r.n; ++i) r.positions[i] = static_cast<uint32_t>(i);
    r.offsets[1] = static_cast<uint32_t>(r.n);
    return;
  }
  const uint32_t shards = static_cast<uint32_t>(num_shards);
  // Each key's shard is hashed once (kMaxShards fits a byte); the scratch is per thread.
  static_assert(kMaxShards <= 256);
  thread_local std::vector<uint8_t> shard_of;
  if (shard_of.size() < r.n) shard_of.resize(r.n);
  for (size_t i = 0; i < r.n; ++i) {
    const uint32_t s = ShardOfKey(r.keys[i], shards);
    shard_of[i] = static_cast<uint8_t>(s);
    ++r.offsets[s + 1];
  }
  for (int s = 0; s < num_shards; ++s) r.offsets[s + 1] += r.offsets[s];
  std::vector<uint32_t>& cursor = r.offsets;  // advanced in place, then shifted back
  for (size_t i = 0; i < r.n; ++i) r.positions[cursor[shard_of[i]]++] = static_cast<uint32_t>(i);
  for (int s = num_shards; s > 0; --s) cursor[s] = cursor[s - 1];
  cursor[0] = 0;
}

}  // namespace

void ShardedTables::FanOut(std::unique_ptr<Request> request) {
  GroupByShard(*request, num_shards_);
  int parts[kMaxShards];
  int num_parts = 0;
  for (int s = 0; s < num_shards_; ++s) {
    if (request->part_size(s) > 0) parts[num_parts++] = s;
  }
  if (num_parts == 0) {  // no keys: done at once
    request->remaining.store(1);
    FinishRequestPart(request.release());
    return;
  }
  request->remaining.store(num_parts, std::memory_order_relaxed);
  Request* raw = request.release();  // from here on the shards own it
  for (int i = 0; i < num_parts; ++i) Enqueue(parts[i], Task{raw, nullptr, {}});
}

void ShardedTables::PullAsync(uint32_t table_id, const uint64_t* keys, size_t n, float* out,
                              uint64_t step, bool count_as_sighting, PullDone done) {
  Status valid = CheckTable(table_id);
  if (!valid.ok()) return done(valid);
  auto r = std::make_unique<Request>();
  r->kind = Request::Kind::kPull;
  r->table_id = table_id;
  r->keys = keys;
  r->n = n;
  r->out = out;
  r->step = step;
  r->count_as_sighting = count_as_sighting;
  r->pull_done = std::move(done);
  FanOut(std::move(r));
}

void ShardedTables::PushAsync(uint32_t table_id, const uint64_t* keys, const float* grads,
                              size_t n, uint64_t step, PushDone done) {
  Status valid = CheckTable(table_id);
  if (valid.ok()) valid = ValidateGradients(keys, grads, n, specs_[table_id].dim, max_gradient_abs_);
  if (!valid.ok()) {
    if (table_id < specs_.size()) rejected_[table_id].fetch_add(1, std::memory_order_relaxed);
    return done(valid.WithContext(table_id < specs_.size() ? "table '" + specs_[table_id].name + "'"
                                                           : "push"));
  }
  auto r = std::make_unique<Request>();
  r->kind = Request::Kind::kPush;
  r->table_id = table_id;
  r->keys = keys;
  r->n = n;
  r->grads = grads;
  r->step = step;
  r->push_done = std::move(done);
  FanOut(std::move(r));
}

void ShardedTables::PushSyncAsync(uint32_t table_id, const uint64_t* keys, const float* grads,
                                  size_t n, uint64_t step, int worker_rank, int num_workers,
                                  PushDone done, uint64_t generation) {
  Status valid = CheckTable(table_id);
  if (valid.ok()) {
    valid = ValidateGradients(keys, grads, n, specs_[table_id].dim, max_gradient_abs_);
    if (!valid.ok()) rejected_[table_id].fetch_add(1, std::memory_order_relaxed);
  }
  if (!valid.ok()) return done(valid);

  auto r = std::make_unique<Request>();
  r->kind = Request::Kind::kPushSync;
  r->table_id = table_id;
  r->keys = keys;
  r->n = n;
  r->grads = grads;
  r->step = step;
  r->push_done = std::move(done);
  GroupByShard(*r, num_shards_);

  std::vector<std::unique_ptr<Request>> passed;
  StatusOr<std::vector<std::unique_ptr<Request>>> all =
      sync_[table_id]->Arrive(step, worker_rank, num_workers, r, generation, &passed);
  for (auto& p : passed) p->push_done(PushResult{});  // steps answered by a lost server
  if (SyncGate::AppliedAlready(all.status())) return r->push_done(PushResult{});  // a replay
  if (!all.ok()) return r->push_done(all.status());
  if (all->empty()) return;  // the other workers' pushes of the step are still to come
  auto complete = std::make_unique<SyncStep>();
  complete->table_id = table_id;
  complete->step = step;
  complete->by_rank = std::move(all).value();
  complete->remaining_shards.store(num_shards_, std::memory_order_relaxed);
  SyncStep* raw = complete.release();  // the shard that finishes last frees it
  for (int s = 0; s < num_shards_; ++s) Enqueue(s, Task{nullptr, raw, {}});
}

void ShardedTables::ApplySyncPart(Shard* shard, SyncStep* step) {
  const int s = shard->index;
  EmbeddingTable& table = *shard->tables[step->table_id];
  const size_t dim = static_cast<size_t>(table.dim());
  shard->sum_index.ClearKeepCapacity();
  shard->sum_keys.clear();
  shard->sum_grads.clear();
  shard->unique_of.clear();
  auto key_of = [shard](uint32_t u) { return shard->sum_keys[u]; };
  // Sum in rank order: the same floats whatever order the pushes arrived in.
  for (const auto& r : step->by_rank) {
    const uint32_t* part = r->part(s);
    for (size_t j = 0, m = r->part_size(s); j < m; ++j) {
      const uint64_t key = r->keys[part[j]];
      const float* g = r->grads + size_t{part[j]} * dim;
      const uint64_t hash = IndexHash(key);
      const size_t pos = shard->sum_index.Find(key, hash, key_of);
      uint32_t u;
      if (pos == RowIndex::kNotFound) {
        u = static_cast<uint32_t>(shard->sum_keys.size());
        shard->sum_keys.push_back(key);
        shard->sum_grads.insert(shard->sum_grads.end(), g, g + dim);
        shard->sum_index.Insert(hash, u);
      } else {
        u = shard->sum_index.SlotAt(pos);
        float* sum = shard->sum_grads.data() + size_t{u} * dim;
        for (size_t i = 0; i < dim; ++i) sum[i] += g[i];
      }
      shard->unique_of.push_back(u);
    }
  }
  const size_t unique = shard->sum_keys.size();
  if (shard->identity.size() < unique) {
    const size_t old = shard->identity.size();
    shard->identity.resize(unique);
    for (size_t i = old; i < unique; ++i) shard->identity[i] = static_cast<uint32_t>(i);
  }
  shard->accepted.resize(unique);
  table.PushSubset(shard->sum_keys.data(), shard->identity.data(), unique,
                   shard->sum_grads.data(), step->step, shard->accepted.data());
  // Each worker hears how many of its own gradients met a row.
  size_t k = 0;
  for (const auto& r : step->by_rank) {
    uint64_t applied = 0;
    const size_t m = r->part_size(s);
    for (size_t j = 0; j < m; ++j) applied += shard->accepted[shard->unique_of[k + j]];
    k += m;
    r->applied.fetch_add(applied, std::memory_order_relaxed);
    r->dropped.fetch_add(m - applied, std::memory_order_relaxed);
  }
  if (step->remaining_shards.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishSyncStep(step);
}

void ShardedTables::FinishSyncStep(SyncStep* step) {
  std::unique_ptr<SyncStep> owned(step);
  for (auto& r : owned->by_rank) {
    r->push_done(PushResult{r->applied.load(std::memory_order_relaxed),
                            r->dropped.load(std::memory_order_relaxed)});
  }
}

void ShardedTables::CancelPendingSyncSteps(const Status& reason) {
  for (auto& gate : sync_) {
    for (auto& [step, waiting] : gate->TakeWaiting()) {
      for (auto& r : waiting) r->push_done(reason.WithContext("sync step " + std::to_string(step)));
    }
  }
}

Status ShardedTables::Pull(uint32_t table_id, const uint64_t* keys, size_t n, float* out,
                           uint64_t step, bool count_as_sighting) {
  if (tls_shard_owner == this) return FailedPrecondition("blocking Pull from a shard thread");
  std::promise<Status> result;
  PullAsync(table_id, keys, n, out, step, count_as_sighting,
            [&result](Status s) { result.set_value(std::move(s)); });
  return result.get_future().get();
}

StatusOr<PushResult> ShardedTables::Push(uint32_t table_id, const uint64_t* keys,
                                         const float* grads, size_t n, uint64_t step) {
  if (tls_shard_owner == this) return FailedPrecondition("blocking Push from a shard thread");
  std::promise<StatusOr<PushResult>> result;
  PushAsync(table_id, keys, grads, n, step,
            [&result](StatusOr<PushResult> r) { result.set_value(std::move(r)); });
  return result.get_future().get();
}

StatusOr<PushResult> ShardedTables::PushSync(uint32_t table_id, const uint64_t* keys,
                                             const float* grads, size_t n, uint64_t step,
                                             int worker_rank, int num_workers) {
  if (tls_shard_owner == this) return FailedPrecondition("blocking PushSync from a shard thread");
  std::promise<StatusOr<PushResult>> result;
  PushSyncAsync(table_id, keys, grads, n, step, worker_rank, num_workers,
                [&result](StatusOr<PushResult> r) { result.set_value(std::move(r)); });
  return result.get_future().get();
}

Status ShardedTables::RunOnShard(int shard, const std::function<void()>& fn) {
  if (tls_shard_owner == this) return FailedPrecondition("RunOnShard from a shard thread");
  std::promise<void> done;
  Enqueue(shard, Task{nullptr, nullptr, [&] {
                        fn();
                        done.set_value();
                      }});
  done.get_future().wait();
  return Status::OK();
}

Status ShardedTables::ForEachShard(uint32_t table_id,
                                   const std::function<void(int, EmbeddingTable&)>& fn) {
  MTPS_RETURN_IF_ERROR(CheckTable(table_id));
  for (int s = 0; s < num_shards_; ++s) {
    Shard* shard = shards_[s].get();
    MTPS_RETURN_IF_ERROR(RunOnShard(s, [&] { fn(s, *shard->tables[table_id]); }));
  }
  return Status::OK();
}

void ShardedTables::set_memory_budget(MemoryBudget* budget) {
  budget_ = budget;
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->table_mu);
    for (auto& table : shard->tables) table->set_memory_budget(budget);
  }
}

Status ShardedTables::ReplaceTable(uint32_t table_id,
                                   std::vector<std::unique_ptr<EmbeddingTable>> tables) {
  MTPS_RETURN_IF_ERROR(CheckTable(table_id));
  const TableSpec& spec = specs_[table_id];
  if (tables.size() != static_cast<size_t>(num_shards_)) {
    return InvalidArgument("replacing table '" + spec.name + "' needs " +
                           std::to_string(num_shards_) + " shards, got " +
                           std::to_string(tables.size()));
  }
  for (const auto& t : tables) {
    if (!t || t->dim() != spec.dim || t->spec().optimizer.type != spec.optimizer.type) {
      return InvalidArgument("replacing table '" + spec.name +
                             "': a new shard is missing or has another dim or optimizer");
    }
  }
  for (auto& t : tables) t->set_memory_budget(budget_);
  for (int s = 0; s < num_shards_; ++s) {
    Shard* shard = shards_[s].get();
    MTPS_RETURN_IF_ERROR(RunOnShard(s, [&] {
      std::unique_ptr<EmbeddingTable> old;
      {
        std::lock_guard<std::mutex> lock(shard->table_mu);
        old = std::exchange(shard->tables[table_id], std::move(tables[s]));
      }
    }));  // `old` is freed here, on the shard thread, outside the lock
  }
  return Status::OK();
}

StatusOr<TableCounters> ShardedTables::Counters(uint32_t table_id) const {
  MTPS_RETURN_IF_ERROR(CheckTable(table_id));
  TableCounters total;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->table_mu);
    total += shard->tables[table_id]->Counters();
  }
  total.rejected_requests += rejected_[table_id].load(std::memory_order_relaxed);
  return total;
}

}  // namespace mtps::ps
