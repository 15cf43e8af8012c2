// RemoteParameterStore: parameters on the parameter servers, reached through ps::Client.
//
//   auto client = ps::Client::Connect(view_server_addresses, {.rank = rank});
//   RemoteParameterStore store(client->get());
//
// Thread-safety: as ps::Client — any thread, any number of operations in flight.
#pragma once

#include "ps/client.h"
#include "worker/parameter_store.h"

namespace mtps {

class RemoteParameterStore : public ParameterStore {
 public:
  explicit RemoteParameterStore(ps::Client* client) : client_(client) {}

  std::future<Status> PullRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               float* out, const PullOptions& options) override {
    return client_->PullAsync(table_id, keys, dim, out, options);
  }
  std::future<Status> PushRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               const float* gradients, const PushOptions& options) override;
  Status InitDense(std::span<const DenseBlockIn> blocks) override {
    return client_->DenseInit(blocks);
  }
  std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) override {
    return client_->DensePullAsync(blocks);
  }
  std::future<Status> PushDense(std::span<const DenseBlockIn> gradients,
                                const PushOptions& options) override;

 private:
  ps::Client* client_;
};

}  // namespace mtps
