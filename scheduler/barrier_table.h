// BarrierTable: named barriers. Nodes arrive with a callback that answers them; when the
// barrier's count is reached every waiter is answered at once; a barrier that is not
// whole within the timeout answers everyone DEADLINE_EXCEEDED.
//
//   BarrierTable barriers(&clock, std::chrono::seconds(60), /*default_count=*/4);
//   barriers.Arrive("epoch-1", 0, {proto::Role::WORKER, 0},
//                   [responder](const Status& s) { ... answer the request ... });
//   barriers.ExpireOverdue();   // from a timer
//
// A barrier's name can be used again once it released. Callbacks run outside the lock,
// on the thread that completed, expired or cancelled the barrier.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "base/status.h"
#include "base/clock.h"
#include "scheduler/failure_detector.h"

namespace mtps::scheduler {

class BarrierTable {
 public:
  using Release = std::function<void(const Status&)>;

  BarrierTable(const Clock* clock, std::chrono::nanoseconds timeout, int default_count);

  // `count` 0 means default_count. The same node arriving again at a waiting barrier (a
  // retried request) replaces its earlier callback, which is answered CANCELLED. A count
  // that disagrees with the barrier's, or is above default_count, is refused at once
  // (INVALID_ARGUMENT, `release` is not kept).
  Status Arrive(const std::string& name, uint32_t count, NodeKey node, Release release);
  // Answers the barriers waiting longer than the timeout; returns how many expired.
  int ExpireOverdue();
  // Answers every waiting barrier with `reason` (the job is ending).
  void CancelAll(const Status& reason);
  size_t waiting() const;

 private:
  struct Waiting {
    uint32_t count = 0;
    Clock::TimePoint since;
    std::map<NodeKey, Release> arrived;
  };

  const Clock* clock_;
  const std::chrono::nanoseconds timeout_;
  const int default_count_;
  mutable std::mutex mutex_;
  std::map<std::string, Waiting> barriers_;  // GUARDED_BY(mutex_)
};

}  // namespace mtps::scheduler
