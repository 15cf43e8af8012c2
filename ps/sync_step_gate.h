// SyncStepGate: in synchronous training, gathers one part per worker for each step and
// hands all of them, in worker-rank order, to the push that completes the step, which
// applies their sum once. Sparse tables (ShardedTables) and dense blocks (DenseBlockStore)
// both gather their sync steps here.
//
//   SyncStepGate<Push> gate("dense block 3");
//   std::vector<Push> passed;
//   StatusOr<std::vector<Push>> all = gate.Arrive(step, rank, num_workers, push, gen, &passed);
//   for (Push& p : passed) p.done(OK);              // steps that can never complete here
//   if (!all.ok()) return push.done(all.status());  // refused: `push` was not taken
//   if (all->empty()) return;                       // waiting for the other workers
//   ApplySumInRankOrder(*all);                       // the step is complete
//
// Refusals are INVALID_ARGUMENT naming the gate, the step and the worker: a rank outside
// [0, num_workers), num_workers differing from what the step's first push said, a second
// push of the same rank for a step. A closed gate refuses every later push with the
// reason it was closed with.
//
// A worker that dies is replaced under its rank by a process of a newer generation (the
// scheduler's, carried in every request), which goes on from the newest step a worker
// finished. So: a push of a step at or below the newest completed one is ALREADY_EXISTS
// (AppliedAlready(): the caller answers it as done, nothing is applied twice); a push of a
// newer generation for a step that holds its rank's part from an older one takes that
// part's place (the dead process's push is dropped unanswered, and its sender never reads
// the answer). The same holds for a later attempt of the same process (SyncPartOrder): a
// worker that lost its answer when a server was replaced sends its part again. Each step
// is applied once, with one part per rank.
//
// A worker sends step t+1 to a server only once that server answered its part of step t.
// So a part of step t from rank r shows that every step before t was answered to r, by
// this server or by one that died: a waiting step without r's part can never complete
// here. That happens on a server that replaced a lost one, when the lost one completed a
// step and died before every worker read its answer: the workers that got theirs went
// on, the others sent their part again. Such a step is passed: its waiting parts are
// handed back to be answered as done, nothing applied (the replacement has lost the
// steps since its checkpoint anyway), instead of waiting for peers that moved on.
// Thread-safety: every method may be called from any thread (one mutex per gate).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "base/status.h"

namespace mtps::ps {

// The order of a worker's parts for SyncStepGate: by the sender's generation, then by
// its send attempt (ps::PushOptions::attempt; at most 65535 count).
inline uint64_t SyncPartOrder(uint64_t generation, uint32_t attempt) {
  return (generation << 16) | std::min<uint32_t>(attempt, 0xFFFF);
}

template <typename Part>
class SyncStepGate {
 public:
  // `what` names the gate in errors ("table 2", "dense block 7").
  explicit SyncStepGate(std::string what) : what_(std::move(what)) {}

  // Adds `part` (moved from only when accepted) as worker `worker_rank`'s of `step`, of
  // order `generation` (SyncPartOrder of the sender's generation and attempt; 0: not known).
  // Returns the step's parts by rank when this push completed it, else an empty vector.
  // The parts of earlier steps an accepted push passed (see above) are appended to
  // `passed`: the caller answers them as done.
  StatusOr<std::vector<Part>> Arrive(uint64_t step, int worker_rank, int num_workers,
                                     Part& part, uint64_t generation, std::vector<Part>* passed) {
    const std::string push = "sync push of " + what_ + " step " + std::to_string(step);
    if (num_workers < 1 || worker_rank < 0 || worker_rank >= num_workers) {
      return InvalidArgument(push + ": worker rank " + std::to_string(worker_rank) +
                             " is outside [0, num_workers=" + std::to_string(num_workers) + ")");
    }
    std::optional<Part> displaced;  // a dead process's part: dropped once the lock is free
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return *closed_;
    if (completed_any_ && step <= newest_completed_) {
      return AlreadyExists(push + " from worker " + std::to_string(worker_rank) +
                           ": applied already (step " + std::to_string(newest_completed_) +
                           " is complete); a replacement worker replays the steps its peers finished");
    }
    Waiting& w = waiting_[step];
    if (w.parts.empty()) {
      w.parts.resize(num_workers);
      w.generations.resize(num_workers, 0);
    }
    const int expected = static_cast<int>(w.parts.size());
    if (expected != num_workers) {
      return InvalidArgument(push + " from worker " + std::to_string(worker_rank) +
                             " says num_workers=" + std::to_string(num_workers) +
                             ", the step's first push said " + std::to_string(expected));
    }
    if (w.parts[worker_rank].has_value()) {
      if (generation <= w.generations[worker_rank]) {
        return InvalidArgument("second " + push + " from worker " + std::to_string(worker_rank));
      }
      displaced.emplace(std::move(*w.parts[worker_rank]));
      w.parts[worker_rank].reset();
      --w.arrived;
    }
    PassStepsBefore(step, worker_rank, passed);  // other steps' entries: `w` stays valid
    w.parts[worker_rank].emplace(std::move(part));
    w.generations[worker_rank] = generation;
    if (++w.arrived < num_workers) return std::vector<Part>();
    std::vector<Part> all;
    all.reserve(num_workers);
    for (std::optional<Part>& p : w.parts) all.push_back(std::move(*p));
    waiting_.erase(step);
    MarkCompleted(step);
    return all;
  }

  // The refusal of a push whose step was applied already: answer it as done.
  static bool AppliedAlready(const Status& status) { return status.code() == StatusCode::kAlreadyExists; }

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
    std::vector<uint64_t> generations;       // of each part's sender
    int arrived = 0;
  };

  void MarkCompleted(uint64_t step) {
    newest_completed_ = completed_any_ ? std::max(newest_completed_, step) : step;
    completed_any_ = true;
  }

  // Ends the waiting steps before `step` that lack `worker_rank`'s part: that worker has
  // gone past them, so they can never complete here.
  void PassStepsBefore(uint64_t step, int worker_rank, std::vector<Part>* passed) {
    for (auto it = waiting_.begin(); it != waiting_.end() && it->first < step;) {
      std::vector<std::optional<Part>>& parts = it->second.parts;
      if (static_cast<size_t>(worker_rank) >= parts.size() || parts[worker_rank].has_value()) {
        ++it;
        continue;
      }
      LOG(WARNING) << "sync step " << it->first << " of " << what_ << " holds "
                   << it->second.arrived << " of " << parts.size()
                   << " parts, but worker " << worker_rank << " has gone on to step " << step
                   << ": the step was answered by a server that is gone; its parts here are "
                      "answered as done, nothing applied";
      for (std::optional<Part>& p : parts) {
        if (p.has_value()) passed->push_back(std::move(*p));
      }
      MarkCompleted(it->first);
      it = waiting_.erase(it);
    }
  }

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
  bool completed_any_ = false;           // GUARDED_BY(mu_)
  uint64_t newest_completed_ = 0;        // GUARDED_BY(mu_)
};

}  // namespace mtps::ps
