// RemoteParameterStore: ps::Client's push results reduced to the Status a trainer needs.
#include "worker/remote_parameter_store.h"

namespace mtps {

std::future<Status> RemoteParameterStore::PushRows(uint32_t table_id,
                                                   std::span<const uint64_t> keys, int dim,
                                                   const float* gradients,
                                                   const PushOptions& options) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> done = promise->get_future();
  client_->PushAsync(table_id, keys, dim, gradients, options,
                     [promise](StatusOr<ps::PushResult> result) {
                       promise->set_value(result.ok() ? Status::OK() : result.status());
                     });
  return done;
}

std::future<Status> RemoteParameterStore::PushDense(std::span<const DenseBlockIn> gradients,
                                                    const PushOptions& options) {
  std::future<StatusOr<ps::PushResult>> pushed = client_->DensePushAsync(gradients, options);
  // Deferred: the conversion runs in whichever thread waits, no thread is spawned.
  return std::async(std::launch::deferred, [pushed = std::move(pushed)]() mutable {
    StatusOr<ps::PushResult> result = pushed.get();
    return result.ok() ? Status::OK() : result.status();
  });
}

}  // namespace mtps
