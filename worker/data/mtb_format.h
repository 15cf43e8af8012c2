// The .mtb binary format: the on-disk layout shared by MtbWriter and MtbReader, and the
// column schema that a file carries.
//
// Layout (little-endian; every section starts 8-byte aligned):
//   file header   "MTPS.MTB" | u32 version | u32 schema_bytes | u64 xxh64(schema) | schema | pad
//   schema        u32 tasks | u32 dense | u32 sparse | label columns | dense names |
//                 (sparse field name, table name) ...           (strings: u32 length + bytes)
//   row group     "RGRP" | u32 rows | u64 payload_bytes | u64 xxh64(payload, seed = rows) | payload
//   payload       f32 labels[rows x tasks] | pad | f32 dense[rows x dense] | pad |
//                 per sparse field: u32 offsets[rows + 1] | pad | u64 keys[offsets[rows]]
//   footer        "MTBI" | u32 groups | per group (u64 offset, u64 rows, u64 payload_bytes) |
//                 u64 total_rows | u64 xxh64(footer before this field)
//   trailer       u64 footer_offset | "MTB.END\0"
// Sparse keys are stored already hashed with their field (FeatureMap), so reading is a copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/data/feature_map.h"

namespace mtps {

inline constexpr char kMtbMagic[8] = {'M', 'T', 'P', 'S', '.', 'M', 'T', 'B'};
inline constexpr char kMtbTrailerMagic[8] = {'M', 'T', 'B', '.', 'E', 'N', 'D', '\0'};
inline constexpr uint32_t kMtbRowGroupMagic = 0x50524752;  // "RGRP"
inline constexpr uint32_t kMtbFooterMagic = 0x4942544D;    // "MTBI"
inline constexpr uint32_t kMtbVersion = 1;
inline constexpr size_t kMtbRowGroupHeaderBytes = 24;
inline constexpr size_t kMtbTrailerBytes = 16;

inline constexpr size_t MtbPad8(size_t n) { return (n + 7) & ~size_t{7}; }

// The columns a .mtb file holds: label columns (per task), dense field names, and sparse
// field names with their tables.
struct MtbSchema {
  struct Sparse {
    std::string name;
    std::string table;
  };
  std::vector<std::string> labels;
  std::vector<std::string> dense;
  std::vector<Sparse> sparse;

  static MtbSchema Of(const FeatureMap& map) {
    MtbSchema s;
    for (int t = 0; t < map.num_tasks(); ++t) s.labels.push_back(map.label(t).column);
    for (int d = 0; d < map.num_dense(); ++d) s.dense.push_back(map.dense(d).name);
    for (int f = 0; f < map.num_sparse(); ++f) s.sparse.push_back({map.sparse(f).name, map.sparse(f).table});
    return s;
  }
};

}  // namespace mtps
