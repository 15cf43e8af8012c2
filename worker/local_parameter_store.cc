// LocalParameterStore: the parameter server's tables and dense blocks, in process.
#include "worker/local_parameter_store.h"

#include <string>

namespace mtps {
namespace {

std::future<Status> Ready(Status status) {
  std::promise<Status> promise;
  promise.set_value(std::move(status));
  return promise.get_future();
}

}  // namespace

LocalParameterStore::LocalParameterStore(const JobSpec& spec)
    : dense_(spec.training.dense_optimizer) {
  for (const TableSpec& table_spec : spec.tables) {
    StatusOr<std::unique_ptr<ps::EmbeddingTable>> table = ps::EmbeddingTable::Create(table_spec);
    if (!table.ok()) {
      status_ = table.status().WithContext("table '" + table_spec.name + "'");
      return;
    }
    tables_.push_back(std::move(table).value());
  }
}

StatusOr<ps::EmbeddingTable*> LocalParameterStore::Table(uint32_t table_id, int dim) {
  if (table_id >= tables_.size()) {
    return NotFound("unknown table id " + std::to_string(table_id) + " (" +
                    std::to_string(tables_.size()) + " tables)");
  }
  ps::EmbeddingTable* table = tables_[table_id].get();
  if (table->dim() != dim) {
    return InvalidArgument("table " + std::to_string(table_id) + " has dim " +
                           std::to_string(table->dim()) + ", request has " + std::to_string(dim));
  }
  return table;
}

std::future<Status> LocalParameterStore::PullRows(uint32_t table_id,
                                                  std::span<const uint64_t> keys, int dim,
                                                  float* out, const PullOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  StatusOr<ps::EmbeddingTable*> table = Table(table_id, dim);
  if (!table.ok()) return Ready(table.status());
  (*table)->Pull(keys.data(), keys.size(), out, options.step, options.count_as_sighting);
  return Ready(Status::OK());
}

std::future<Status> LocalParameterStore::PushRows(uint32_t table_id,
                                                  std::span<const uint64_t> keys, int dim,
                                                  const float* gradients,
                                                  const PushOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  StatusOr<ps::EmbeddingTable*> table = Table(table_id, dim);
  if (!table.ok()) return Ready(table.status());
  StatusOr<ps::PushResult> pushed = (*table)->Push(keys.data(), gradients, keys.size(), options.step);
  return Ready(pushed.ok() ? Status::OK() : pushed.status());
}

Status LocalParameterStore::InitDense(std::span<const DenseBlockIn> blocks) {
  for (const DenseBlockIn& block : blocks) {
    MTPS_RETURN_IF_ERROR(
        dense_.Init(block.id, std::string(block.name), block.values.data(), block.values.size()));
  }
  return Status::OK();
}

std::future<Status> LocalParameterStore::PullDense(std::span<const DenseBlockOut> blocks) {
  for (const DenseBlockOut& block : blocks) {
    Status status = dense_.Pull(block.id, block.values.data(), block.values.size());
    if (!status.ok()) return Ready(status);
  }
  return Ready(Status::OK());
}

std::future<Status> LocalParameterStore::PushDense(std::span<const DenseBlockIn> gradients,
                                                   const PushOptions& options) {
  // Every block is validated before any is applied, so a bad push changes nothing.
  for (const DenseBlockIn& block : gradients) {
    Status finite = ps::ValidateFinite(block.values.data(), block.values.size(),
                                       "dense gradient");
    if (!finite.ok()) return Ready(finite.WithContext("block " + std::to_string(block.id)));
  }
  for (const DenseBlockIn& block : gradients) {
    Status status = dense_.Push(block.id, block.values.data(), block.values.size(), options.dense_steps);
    if (!status.ok()) return Ready(status);
  }
  return Ready(Status::OK());
}

StatusOr<std::unique_ptr<LocalParameterStore::Snapshot>> LocalParameterStore::TakeSnapshot() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto snapshot = std::make_unique<Snapshot>();
  for (const std::unique_ptr<ps::EmbeddingTable>& table : tables_) {
    MTPS_ASSIGN_OR_RETURN(std::unique_ptr<ps::EmbeddingTable> copy, ps::EmbeddingTable::Create(table->spec()));
    copy->ReserveRows(table->rows());
    table->ForEachStoredRow([&copy](uint64_t key, const char* stored, const ps::RowMeta& meta) {
      copy->InsertStoredRow(key, stored, meta);
    });
    snapshot->tables.push_back(std::move(copy));
  }
  snapshot->dense = dense_.Snapshot();
  return snapshot;
}

Status LocalParameterStore::Restore(std::unique_ptr<Snapshot> snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (snapshot == nullptr || snapshot->tables.size() != tables_.size()) {
    return InvalidArgument("a parameter snapshot of another job (its tables differ)");
  }
  MTPS_RETURN_IF_ERROR(dense_.Restore(std::move(snapshot->dense)));
  tables_ = std::move(snapshot->tables);
  return Status::OK();
}

const ps::EmbeddingTable* LocalParameterStore::table(uint32_t table_id) const {
  return table_id < tables_.size() ? tables_[table_id].get() : nullptr;
}

}  // namespace mtps
