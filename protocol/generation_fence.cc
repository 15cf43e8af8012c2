// GenerationFence: the published generation of every worker rank, and the check that
// refuses requests from an older one.
#include "protocol/generation_fence.h"

#include <string>

#include "protocol/transport.h"

namespace mtps {

void GenerationFence::Publish(proto::Role role, int32_t rank, uint64_t generation) {
  if (role != proto::Role::WORKER || rank < 0 || generation == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t& known = workers_[rank];
  if (generation > known) known = generation;
}

Status GenerationFence::Check(proto::Envelope::Reader envelope) const {
  const auto sender = envelope.getSender();
  if (sender.getRole() != proto::Role::WORKER) return Status::OK();
  const uint64_t generation = envelope.getSenderGeneration();
  uint64_t current = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = workers_.find(sender.getRank());
    if (it == workers_.end()) return Status::OK();
    current = it->second;
  }
  if (generation >= current) return Status::OK();
  refused_.fetch_add(1, std::memory_order_relaxed);
  return PermissionDenied(BodyKindName(envelope.getBody().which()) + " from worker " +
                          std::to_string(sender.getRank()) + " of generation " +
                          std::to_string(generation) + " is fenced: the rank is now held by generation " +
                          std::to_string(current) +
                          " (this process was declared lost and replaced; it must not write into the job)");
}

}  // namespace mtps
