// ModelInput / ModelOutput: what a multi-task model reads and writes for one batch, as
// host pointers that the worker points into its Batch and pulled-row buffers (no copy).
//
//   ModelInput in;
//   in.batch_size = batch.size;
//   in.dense = batch.dense.data();  in.labels = batch.labels.data();
//   for (auto& f : batch.fields) in.fields.push_back({f.offsets.data(), f.unique_index.data()});
//   for (int t = 0; t < tables; ++t) in.tables.push_back({pulled[t].data(), num_unique[t]});
//   MTPS_RETURN_IF_ERROR(model->Train(in, step, &out));
//
// Which table a field reads and how it pools come from the JobSpec the model was built
// from (sparse_fields[i].table / .pooling), so the input carries only the data.
#pragma once

#include <cstdint>
#include <vector>

namespace mtps::models {

template <typename T>
struct ModelInputT {
  // One sparse field, JobSpec.sparse_fields order: CSR over the batch's records.
  struct Field {
    const int32_t* offsets = nullptr;  // [B + 1]; record r owns values [offsets[r], offsets[r+1])
    const int32_t* rows = nullptr;     // [offsets[B]]: row of each value in its table's `rows`
  };
  // One table, JobSpec.tables order: the pulled embedding rows of the batch's unique keys.
  struct Table {
    const T* rows = nullptr;  // [num_rows x dim] row-major
    int num_rows = 0;
  };

  int batch_size = 0;           // B
  const T* dense = nullptr;     // [B x D], JobSpec.dense_fields order (may be null when D = 0)
  const T* labels = nullptr;    // [B x T], JobSpec.tasks order; null: predict only
  std::vector<Field> fields;
  std::vector<Table> tables;
};

template <typename T>
struct ModelOutputT {
  std::vector<double> task_loss;    // per task: mean loss over the batch, unweighted
  std::vector<double> task_weight;  // per task: the weight applied this step
  double objective = 0;             // what training minimizes: the weighted sum (+ penalties)
  std::vector<std::vector<T>> predictions;  // per task [B]: probability (bce) or value (mse)
  // Train only, per table [num_rows x dim]: dloss/drow, scatter-added over duplicates.
  std::vector<std::vector<T>> row_grads;
};

using ModelInput = ModelInputT<float>;
using ModelOutput = ModelOutputT<float>;

}  // namespace mtps::models
