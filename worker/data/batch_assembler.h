// BatchAssembler: copies records from ColumnViews into a pooled Batch and finishes it with
// each table's unique keys and every key's index into them (DESIGN.md steps 1-2).
//
//   BatchAssembler assembler(map);
//   assembler.Begin(&batch);
//   assembler.AppendRange(view, 0, 512, &batch);       // or AppendRows(view, order, n, &batch)
//   assembler.Finish(&batch);                         // dedup per table
//
// Reuses the batch's vectors and its own hash map: no allocation once capacities have
// grown to the largest batch. A sequence field keeps each record's last max_length values.
// Thread-safety: none; one assembler per reader thread.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/batch.h"
#include "worker/data/column_block.h"
#include "worker/data/feature_map.h"
#include "worker/data/key_dedup.h"

namespace mtps {

class BatchAssembler {
 public:
  explicit BatchAssembler(const FeatureMap& map);

  // Clears `batch` and shapes it for this map (tasks, dense, fields, tables).
  void Begin(Batch* batch) const;
  // Appends records begin..end-1 of `view` (one block copy per column when possible).
  void AppendRange(const ColumnView& view, int64_t begin, int64_t end, Batch* batch) const;
  // Appends records rows[0..n-1] of `view`, in that order.
  void AppendRows(const ColumnView& view, const uint32_t* rows, int64_t n, Batch* batch) const;
  // Fills every table's unique_keys and every field's unique_index.
  void Finish(Batch* batch);

 private:
  void AppendSequence(const ColumnView::Sparse& s, const uint32_t* rows, int64_t begin, int64_t n,
                      uint32_t max_length, Batch::Field* out) const;

  const FeatureMap& map_;
  std::vector<std::vector<int>> table_fields_;  // per table: the sparse fields mapped to it
  KeyDedup dedup_;
};

}  // namespace mtps
