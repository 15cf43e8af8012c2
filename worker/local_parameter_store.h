// LocalParameterStore: parameters held in this process, in the parameter server's own
// EmbeddingTable and DenseBlockStore, so local and distributed training share every line
// of optimizer, initializer and admission code.
//
//   LocalParameterStore store(spec);   // spec: JobSpec
//   MTPS_RETURN_IF_ERROR(store.status());
//
// Thread-safety: calls are serialized by one mutex (a local trainer is one thread; the
// lock only keeps concurrent use safe). Futures are ready when the call returns.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "protocol/job_spec.h"
#include "ps/dense_block.h"
#include "ps/embedding_table.h"
#include "worker/parameter_store.h"

namespace mtps {

class LocalParameterStore : public ParameterStore {
 public:
  explicit LocalParameterStore(const JobSpec& spec);

  // Whether the tables could be created from the spec.
  const Status& status() const { return status_; }

  std::future<Status> PullRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               float* out, const PullOptions& options) override;
  std::future<Status> PushRows(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                               const float* gradients, const PushOptions& options) override;
  Status InitDense(std::span<const DenseBlockIn> blocks) override;
  std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) override;
  std::future<Status> PushDense(std::span<const DenseBlockIn> gradients,
                                const PushOptions& options) override;

  // A copy of every stored row (bit for bit, with its optimizer state and metadata) and of
  // every dense block: LocalTrainer keeps its best epoch's model in one. The admission
  // sketches are not copied (a restored store admits as if those keys were new).
  struct Snapshot {
    std::vector<std::unique_ptr<ps::EmbeddingTable>> tables;
    std::vector<ps::DenseBlockSnapshot> dense;
  };
  StatusOr<std::unique_ptr<Snapshot>> TakeSnapshot();
  // Makes the store hold `snapshot`'s parameters (consumed).
  Status Restore(std::unique_ptr<Snapshot> snapshot);

  // For tests and reports: the table of `table_id` (null when unknown) and the dense blocks.
  const ps::EmbeddingTable* table(uint32_t table_id) const;
  const ps::DenseBlockStore& dense() const { return dense_; }

 private:
  StatusOr<ps::EmbeddingTable*> Table(uint32_t table_id, int dim);

  Status status_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<ps::EmbeddingTable>> tables_;
  ps::DenseBlockStore dense_;
};

}  // namespace mtps
