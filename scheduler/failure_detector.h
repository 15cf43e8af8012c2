// FailureDetector: declares a node dead when it has sent no heartbeat for longer than the
// timeout, as read from an injected Clock.
//
//   FailureDetector detector(&clock, std::chrono::seconds(10));
//   detector.Watch({proto::Role::WORKER, 0});       // from now on it must beat
//   detector.Beat({proto::Role::WORKER, 0});
//   for (const NodeKey& dead : detector.FindSilent()) ...   // each reported once
//
// Thread-safety: all methods may be called concurrently (one internal mutex).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/mtps.capnp.h"
#include "base/clock.h"

namespace mtps::scheduler {

struct NodeKey {
  proto::Role role;
  int rank;
  friend auto operator<=>(const NodeKey&, const NodeKey&) = default;
};

class FailureDetector {
 public:
  FailureDetector(const Clock* clock, std::chrono::nanoseconds timeout);

  // Starts watching `node`; its silence is counted from now.
  void Watch(NodeKey node);
  void Forget(NodeKey node);
  // False for a node that is not watched (or already declared dead).
  bool Beat(NodeKey node);
  // Nodes silent for longer than the timeout, each returned once (then no longer watched),
  // with how long each has been silent.
  std::vector<std::pair<NodeKey, std::chrono::nanoseconds>> FindSilent();
  std::chrono::nanoseconds timeout() const { return timeout_; }

 private:
  const Clock* clock_;
  const std::chrono::nanoseconds timeout_;
  std::mutex mutex_;
  std::map<NodeKey, Clock::TimePoint> last_beat_;  // GUARDED_BY(mutex_)
};

}  // namespace mtps::scheduler
