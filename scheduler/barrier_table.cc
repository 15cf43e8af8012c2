// BarrierTable: arrival bookkeeping, release, timeout and cancellation of named barriers.
#include "scheduler/barrier_table.h"

#include <vector>

#include "scheduler/membership.h"

namespace mtps::scheduler {

namespace {

std::string ListNodes(const std::map<NodeKey, BarrierTable::Release>& arrived) {
  std::string out;
  for (const auto& [node, release] : arrived) {
    out += (out.empty() ? "" : ", ") + std::string(RoleName(node.role)) + " " +
           std::to_string(node.rank);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

BarrierTable::BarrierTable(const Clock* clock, std::chrono::nanoseconds timeout, int default_count)
    : clock_(clock), timeout_(timeout), default_count_(default_count) {}

Status BarrierTable::Arrive(const std::string& name, uint32_t count, NodeKey node,
                            Release release) {
  if (count == 0) count = static_cast<uint32_t>(default_count_);
  if (count > static_cast<uint32_t>(default_count_)) {
    return InvalidArgument("barrier '" + name + "' asks for " + std::to_string(count) +
                           " nodes but the cluster has " + std::to_string(default_count_));
  }
  std::vector<Release> to_release;
  Release superseded;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = barriers_.try_emplace(name);
    Waiting& barrier = it->second;
    if (inserted) {
      barrier.count = count;
      barrier.since = clock_->Now();
    } else if (barrier.count != count) {
      return InvalidArgument("barrier '" + name + "' is waiting for " +
                             std::to_string(barrier.count) + " nodes; " + RoleName(node.role) +
                             " " + std::to_string(node.rank) + " arrived expecting " +
                             std::to_string(count));
    }
    auto& slot = barrier.arrived[node];
    superseded = std::move(slot);
    slot = std::move(release);
    if (barrier.arrived.size() >= barrier.count) {
      for (auto& [key, waiter] : barrier.arrived) to_release.push_back(std::move(waiter));
      barriers_.erase(it);
    }
  }
  if (superseded) {
    superseded(Cancelled("barrier '" + name + "': superseded by a later arrival of the same node"));
  }
  for (Release& r : to_release) r(Status::OK());
  return Status::OK();
}

int BarrierTable::ExpireOverdue() {
  std::vector<std::pair<Status, std::vector<Release>>> expired;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Clock::TimePoint now = clock_->Now();
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      const Waiting& barrier = it->second;
      if (now - barrier.since <= timeout_) {
        ++it;
        continue;
      }
      const double seconds = std::chrono::duration<double>(timeout_).count();
      Status status = DeadlineExceeded(
          "barrier '" + it->first + "' timed out after " + std::to_string(seconds) + " s: " +
          std::to_string(barrier.arrived.size()) + " of " + std::to_string(barrier.count) +
          " nodes arrived (" + ListNodes(barrier.arrived) + ")");
      std::vector<Release> waiters;
      for (auto& [key, waiter] : it->second.arrived) waiters.push_back(std::move(waiter));
      expired.emplace_back(std::move(status), std::move(waiters));
      it = barriers_.erase(it);
    }
  }
  for (auto& [status, waiters] : expired) {
    for (Release& r : waiters) r(status);
  }
  return static_cast<int>(expired.size());
}

void BarrierTable::CancelAll(const Status& reason) {
  std::map<std::string, Waiting> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(barriers_);
  }
  for (auto& [name, barrier] : all) {
    for (auto& [key, waiter] : barrier.arrived) waiter(reason.WithContext("barrier '" + name + "'"));
  }
}

size_t BarrierTable::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return barriers_.size();
}

}  // namespace mtps::scheduler
