// ParameterStore: where a trainer's parameters live — sparse rows by key and dense blocks
// by id. Two implementations: LocalParameterStore (in this process, on the parameter
// server's own tables and optimizers) and RemoteParameterStore (the servers, through
// ps::Client). The training loop is written once against this interface, which is what
// makes a one-worker synchronous run equal LocalTrainer.
//
//   std::future<Status> pulled = store.PullRows(table, keys, dim, rows.data(), {.step = t});
//   ... compute ...
//   MTPS_RETURN_IF_ERROR(pulled.get());
//   auto pushed = store.PushRows(table, keys, dim, grads.data(), {.step = t});
//
// Thread-safety: implementations accept calls from any thread; output buffers must stay
// valid until the returned future is ready. So must the keys and gradients of a sync push
// (options.sync; the step waits for its pushes anyway): a store may send them again after
// a lost server. An async push's inputs may change as soon as the call returns.
#pragma once

#include <cstdint>
#include <future>
#include <span>

#include "base/status.h"
#include "ps/parameter_types.h"

namespace mtps {

using ps::DenseBlockIn;
using ps::DenseBlockOut;
using ps::PullOptions;
using ps::PushOptions;

class ParameterStore {
 public:
  virtual ~ParameterStore() = default;

  // out[i * dim ...] = row of keys[i].
  virtual std::future<Status> PullRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                                       float* out, const PullOptions& options) = 0;
  // Applies gradients [keys.size() x dim] with the table's optimizer.
  virtual std::future<Status> PushRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                                       const float* gradients, const PushOptions& options) = 0;

  // Creates the dense blocks that do not exist yet with these values.
  virtual Status InitDense(std::span<const DenseBlockIn> blocks) = 0;
  virtual std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) = 0;
  virtual std::future<Status> PushDense(std::span<const DenseBlockIn> gradients,
                                        const PushOptions& options) = 0;
};

}  // namespace mtps
