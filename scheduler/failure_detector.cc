// FailureDetector: last-heartbeat times and the timeout check.
#include "scheduler/failure_detector.h"

namespace mtps::scheduler {

FailureDetector::FailureDetector(const Clock* clock, std::chrono::nanoseconds timeout)
    : clock_(clock), timeout_(timeout) {}

void FailureDetector::Watch(NodeKey node) {
  std::lock_guard<std::mutex> lock(mutex_);
  last_beat_[node] = clock_->Now();
}

void FailureDetector::Forget(NodeKey node) {
  std::lock_guard<std::mutex> lock(mutex_);
  last_beat_.erase(node);
}

bool FailureDetector::Beat(NodeKey node) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = last_beat_.find(node);
  if (it == last_beat_.end()) return false;
  it->second = clock_->Now();
  return true;
}

std::vector<std::pair<NodeKey, std::chrono::nanoseconds>> FailureDetector::FindSilent() {
  std::vector<std::pair<NodeKey, std::chrono::nanoseconds>> silent;
  std::lock_guard<std::mutex> lock(mutex_);
  const Clock::TimePoint now = clock_->Now();
  for (auto it = last_beat_.begin(); it != last_beat_.end();) {
    const std::chrono::nanoseconds quiet = now - it->second;
    if (quiet > timeout_) {
      silent.emplace_back(it->first, quiet);
      it = last_beat_.erase(it);
    } else {
      ++it;
    }
  }
  return silent;
}

}  // namespace mtps::scheduler
