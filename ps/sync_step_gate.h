// SyncStepGate: in synchronous training, gathers one part per worker for each step and
// hands all of them, in worker-rank order, to the push that completes the step, which
// applies their sum once. Sparse tables (ShardedTables) and dense blocks (DenseBlockStore)
// both gather their sync steps here.
//
//   SyncStepGate<Push> gate("dense block 3");
//   StatusOr<std::vector<Push>> all = gate.Arrive(step, rank, num_workers, push);
//   if (!all.ok()) return push.done(all.status());  // refused: `push` was not taken
//   if (all->empty()) return;                       // waiting for the other workers
//   ApplySumInRankOrder(*all);                       // the step is complete
//
// Refusals are INVALID_ARGUMENT naming the gate, the step and the worker: a rank outside
// [0, num_workers), num_workers differing from what the step's first push said, a second
// push of the same rank for a step. A closed gate refuses every later push with the
// reason it was closed with.
// Thread-safety: every method may be called from any thread (one mutex per gate).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace mtps::ps {

template <typename Part>
class SyncStepGate {
 public:
  // `what` names the gate in errors ("table 2", "dense block 7").
  explicit SyncStepGate(std::string what) : what_(std::move(what)) {}

  // Adds `part` (moved from only when accepted) as worker `worker_rank`'s of `step`.
  // Returns the step's parts by rank when this push completed it, else an empty vector.
  StatusOr<std::vector<Part>> Arrive(uint64_t step, int worker_rank, int num_workers,
                                     Part& part) {
    const std::string push = "sync push of " + what_ + " step " + std::to_string(step);
    if (num_workers < 1 || worker_rank < 0 || worker_rank >= num_workers) {
      return InvalidArgument(push + ": worker rank " + std::to_string(worker_rank) +
                             " is outside [0, num_workers=" + std::to_string(num_workers) + ")");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return *closed_;
    Waiting& w = waiting_[step];
    if (w.parts.empty()) w.parts.resize(num_workers);
    const int expected = static_cast<int>(w.parts.size());
    if (expected != num_workers) {
      return InvalidArgument(push + " from worker " + std::to_string(worker_rank) +
                             " says num_workers=" + std::to_string(num_workers) +
                             ", the step's first push said " + std::to_string(expected));
    }
    if (w.parts[worker_rank].has_value()) {
      return InvalidArgument("second " + push + " from worker " + std::to_string(worker_rank));
    }
    w.parts[worker_rank].emplace(std::move(part));
    if (++w.arrived < num_workers) return std::vector<Part>();
    std::vector<Part> all;
    all.reserve(num_workers);
    for (std::optional<Part>& p : w.parts) all.push_back(std::move(*p));
    waiting_.erase(step);
    return all;
  }

  // Takes the parts of every step still waiting (by step; each step's by rank) for the
  // caller to answer, e.g. when a worker died or the server stops.
  std::map<uint64_t, std::vector<Part>> TakeWaiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return TakeWaitingLocked();
  }

  // TakeWaiting, and from now on every push is refused with `reason`.
  std::map<uint64_t, std::vector<Part>> Close(Status reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) closed_ = std::move(reason);
    return TakeWaitingLocked();
  }

 private:
  struct Waiting {
    std::vector<std::optional<Part>> parts;  // by worker rank; size = the step's num_workers
    int arrived = 0;
  };

  std::map<uint64_t, std::vector<Part>> TakeWaitingLocked() {
    std::map<uint64_t, std::vector<Part>> taken;
    for (auto& [step, w] : waiting_) {
      std::vector<Part>& parts = taken[step];
      for (std::optional<Part>& p : w.parts) {
        if (p.has_value()) parts.push_back(std::move(*p));
      }
    }
    waiting_.clear();
    return taken;
  }

  const std::string what_;
  std::mutex mu_;
  std::map<uint64_t, Waiting> waiting_;  // GUARDED_BY(mu_)
  std::optional<Status> closed_;         // GUARDED_BY(mu_)
};

}  // namespace mtps::ps
