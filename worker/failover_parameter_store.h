// FailoverParameterStore: the parameter servers through ps::Client, surviving the loss and
// replacement of a server. The scheduler's view says which servers are live; while one is
// lost, requests are held (bounded by hold_timeout) and sent once its replacement's
// address is in the view.
//
//   auto store = FailoverParameterStore::Create(server_addresses, {.client = {.rank = 1}});
//   control->OnViewChange([&](const ClusterInfo& v) { (*store)->UpdateView(Addresses(v)); });
//   Trainer::Create(spec, store->get(), ...);
//   control->OnShutdown([&](auto& n) { (*store)->Stop(Cancelled(n.reason)); });
//
// What happens to a request that meets a lost server:
//   - pulls (sparse and dense) and dense init are idempotent: retried with backoff, on the
//     new server once the view has it, until hold_timeout after the first failure;
//   - async pushes issued while a server is lost are held (keys and gradients copied) and
//     sent once it is back; a push that fails in flight (the server died under it) is
//     dropped and counted — its part on the lost server is lost with the server's state
//     since the checkpoint anyway, and re-sending could apply it twice elsewhere;
//   - sync pushes, after a failure in flight or while a server is lost, are sent again
//     from the caller's buffers (kept until the future is ready) once every server is
//     live, as a later attempt (PushOptions::attempt): each server's step gate keeps a
//     rank's latest part, so the step counts it once, and the replacement gathers the step
//     anew (its shard has lost the steps since its checkpoint, as in async mode).
// A view change replaces the ps::Client: requests in flight on the old one end at once
// with an error and take the path above.
//
// Thread-safety: as ps::Client — any thread. Held requests wait on an internal thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ps/client.h"
#include "worker/parameter_store.h"

namespace mtps {

struct FailoverOptions {
  ps::ClientOptions client;
  std::chrono::milliseconds hold_timeout{120000};  // a request waits this long for a server
  std::chrono::milliseconds first_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
};

class FailoverParameterStore : public ParameterStore {
 public:
  // `servers[r]`: the address of server r (all present).
  static StatusOr<std::unique_ptr<FailoverParameterStore>> Create(std::vector<std::string> servers,
                                                                  FailoverOptions options);
  ~FailoverParameterStore() override;

  // The servers of a newer view, by rank; an empty address is a lost server.
  void UpdateView(const std::vector<std::string>& servers);
  // Every held, in-flight and later request ends with `reason`.
  void Stop(const Status& reason);
  uint64_t dropped_pushes() const { return dropped_pushes_.load(); }

  std::future<Status> PullRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               float* out, const PullOptions& options) override;
  std::future<Status> PushRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               const float* gradients, const PushOptions& options) override;
  Status InitDense(std::span<const DenseBlockIn> blocks) override;
  std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) override;
  std::future<Status> PushDense(std::span<const DenseBlockIn> gradients,
                                const PushOptions& options) override;

 private:
  // One request and how to send it to a client; `attempt` calls `done` exactly once.
  struct Op {
    std::function<void(ps::Client&, std::function<void(Status)> done)> attempt;
    bool retry_in_flight = true;  // false: an in-flight failure is dropped (async pushes)
    std::promise<Status> promise;
    std::optional<std::chrono::steady_clock::time_point> first_failure;
    int failures = 0;
    uint64_t view = 0;  // the view it was last sent under
  };

  struct OwnedBlock {
    uint32_t id;
    std::string name;
    std::vector<float> values;
  };

  explicit FailoverParameterStore(FailoverOptions options);
  std::shared_ptr<ps::Client> current() const;
  std::future<Status> Submit(std::shared_ptr<Op> op);
  // Sends now when every server is live, else queues it for the holding thread.
  void Issue(std::shared_ptr<Op> op);
  void OnDone(const std::shared_ptr<Op>& op, Status status);
  void HoldLoop();
  static bool Retryable(const Status& status);

  const FailoverOptions options_;
  std::atomic<uint64_t> dropped_pushes_{0};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<ps::Client> client_;       // null while a server is lost  GUARDED_BY(mutex_)
  std::vector<std::string> servers_;         // GUARDED_BY(mutex_)
  uint64_t view_ = 0;                        // local count of view changes   GUARDED_BY(mutex_)
  std::optional<Status> stopped_;            // GUARDED_BY(mutex_)
  std::deque<std::shared_ptr<Op>> held_;     // GUARDED_BY(mutex_)
  // Dense blocks as first created, for a replacement server that restored none.
  std::vector<OwnedBlock> dense_init_;       // GUARDED_BY(mutex_)

  std::thread holder_;
};

}  // namespace mtps
