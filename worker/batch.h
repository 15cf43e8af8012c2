// Batch: one batch of training records as the data pipeline hands it to the training
// loop (DESIGN.md, "One training step, as data", steps 1-2).
//
// Batches are pooled and reused: Clear() keeps every vector's capacity, so a steady-state
// step allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

namespace mtps {

struct Batch {
  // One sparse field (JobSpec.sparse_fields order): a CSR list of 64-bit keys.
  struct Field {
    std::vector<int32_t> offsets;       // size()+1 entries; record r owns [offsets[r], offsets[r+1])
    std::vector<uint64_t> keys;         // offsets.back() keys, already hashed with the field
    std::vector<int32_t> unique_index;  // per key: its row in the table's unique_keys
  };
  // One table (JobSpec.tables order): the distinct keys of every field mapped to it.
  struct Table {
    std::vector<uint64_t> unique_keys;
  };

  int size = 0;               // records B
  int num_tasks = 0;          // T
  int num_dense = 0;          // D
  std::vector<float> labels;  // [B x T] row-major, JobSpec.tasks order
  std::vector<float> dense;   // [B x D] row-major, JobSpec.dense_fields order
  std::vector<Field> fields;
  std::vector<Table> tables;

  // Where the batch came from, so a restarted worker can resume.
  uint32_t epoch = 0;
  uint64_t first_record = 0;  // position of the first record in this worker's epoch stream

  void Clear() {
    size = 0;
    labels.clear();
    dense.clear();
    for (Field& f : fields) {
      f.offsets.clear();
      f.keys.clear();
      f.unique_index.clear();
    }
    for (Table& t : tables) t.unique_keys.clear();
  }
};

}  // namespace mtps
