// FeatureMap: how the job spec turns raw input columns into model inputs — one label per
// task, dense floats, and per sparse field 64-bit keys hashed together with the field.
//
//   MTPS_ASSIGN_OR_RETURN(FeatureMap map, FeatureMap::Create(spec));
//   uint64_t k = map.Key(0, "12345");     // field 0's key for raw value "12345"
//   uint64_t m = map.sparse(0).missing_key;
//
// A key is XXH64(value, seed = XXH64(field name + '\0')): the same value in two fields gives
// unrelated keys, so fields never collide, and the key depends on the field *name* (not the
// column), so renaming a column in the input keeps a trained model's keys. A missing sparse
// value maps to the field's own "missing" key (a learned embedding) under
// MissingPolicy::kDefault; no raw value can produce it, because raw values never contain a
// NUL byte. A field with a key_field hashes with that field's seed (a history of items
// shares the item keys). Thread-safety: immutable after Create(); const methods are safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "base/hash.h"

namespace mtps {

// Seed of a field's key hash.
inline uint64_t FieldSeed(std::string_view field_name) {
  std::string s(field_name);
  s.push_back('\0');
  return Xxh64String(s);
}
inline uint64_t FeatureKey(uint64_t field_seed, std::string_view value) {
  return Xxh64String(value, field_seed);
}
inline uint64_t MissingFeatureKey(uint64_t field_seed) {
  return Xxh64String(std::string_view("\0missing", 8), field_seed);
}

class FeatureMap {
 public:
  struct Label {
    std::string task;
    std::string column;
    bool binary = false;  // a bce task: a label other than 0 or 1 makes the record bad
  };
  struct Dense {
    std::string name;
    std::string column;
    float default_value = 0.0f;
    MissingPolicy missing = MissingPolicy::kDefault;
  };
  struct Sparse {
    std::string name;
    std::string column;
    std::string table;
    int table_index = -1;  // index into JobSpec.tables
    bool multi_valued = false;
    MissingPolicy missing = MissingPolicy::kDefault;
    bool sequence = false;  // pooling: sequence: an empty cell is an empty list
    int max_length = 0;     // > 0: only the last max_length values are kept
    uint64_t seed = 0;      // of the key_field when the spec names one
    uint64_t missing_key = 0;
  };

  FeatureMap() = default;
  // Refuses a field whose table is not in spec.tables, and duplicate field names.
  static StatusOr<FeatureMap> Create(const JobSpec& spec);

  int num_tasks() const { return static_cast<int>(labels_.size()); }
  int num_dense() const { return static_cast<int>(dense_.size()); }
  int num_sparse() const { return static_cast<int>(sparse_.size()); }
  int num_tables() const { return num_tables_; }
  const Label& label(int t) const { return labels_[t]; }
  const Dense& dense(int d) const { return dense_[d]; }
  const Sparse& sparse(int f) const { return sparse_[f]; }

  uint64_t Key(int field, std::string_view value) const { return FeatureKey(sparse_[field].seed, value); }

 private:
  std::vector<Label> labels_;
  std::vector<Dense> dense_;
  std::vector<Sparse> sparse_;
  int num_tables_ = 0;
};

}  // namespace mtps
