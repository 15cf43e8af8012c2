// GenerationFence: which generation of each worker rank a parameter server accepts data
// requests from. The scheduler gives every registration a generation and publishes each
// rank's current one in the cluster view; a process declared lost and replaced (e.g. one
// stopped with SIGSTOP past the heartbeat timeout, then resumed) still carries its old one
// in every request (Envelope.senderGeneration) and must not write into the job.
//
//   auto fence = std::make_shared<GenerationFence>();
//   transport.fence = fence;                     // RpcServer checks before any handler
//   fence->Publish(proto::Role::WORKER, 1, 7);   // from each new cluster view
//
// Only requests from workers are checked (tools and the scheduler carry none); a rank with
// nothing published yet passes, so a server that has not seen a view fences no one.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "base/status.h"
#include "protocol/mtps.capnp.h"

namespace mtps {

class GenerationFence {
 public:
  // The generation now holding `rank`; an older one is refused from now on. A lower value
  // than the one known is ignored (views can arrive out of order).
  void Publish(proto::Role role, int32_t rank, uint64_t generation);
  // PERMISSION_DENIED naming the rank and both generations for a worker's request of an
  // older generation (0 included: a worker that carries none) than the published one.
  Status Check(proto::Envelope::Reader envelope) const;
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mutex_;
  std::map<int32_t, uint64_t> workers_;  // rank -> current generation  GUARDED_BY(mutex_)
  mutable std::atomic<uint64_t> refused_{0};
};

}  // namespace mtps
