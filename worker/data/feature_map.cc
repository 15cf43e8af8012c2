// FeatureMap::Create: resolves the job spec's tasks, dense and sparse fields into the
// column lists and per-field key seeds that the readers and writers use.
#include "worker/data/feature_map.h"

#include <set>

namespace mtps {

StatusOr<FeatureMap> FeatureMap::Create(const JobSpec& spec) {
  FeatureMap map;
  map.num_tables_ = static_cast<int>(spec.tables.size());
  for (const TaskSpec& t : spec.tasks) {
    if (t.label.empty()) return InvalidArgument("task '" + t.name + "' has no label column");
    map.labels_.push_back({t.name, t.label, t.loss == TaskSpec::Loss::kBce});
  }
  std::set<std::string> names;
  for (const DenseFieldSpec& d : spec.dense_fields) {
    if (!names.insert(d.name).second) return InvalidArgument("duplicate field name '" + d.name + "'");
    map.dense_.push_back({d.name, d.column.empty() ? d.name : d.column, d.default_value, d.missing});
  }
  for (const SparseFieldSpec& s : spec.sparse_fields) {
    if (!names.insert(s.name).second) return InvalidArgument("duplicate field name '" + s.name + "'");
    Sparse f;
    f.name = s.name;
    f.column = s.column.empty() ? s.name : s.column;
    f.table = s.table;
    f.table_index = spec.TableIndex(s.table);
    if (f.table_index < 0) {
      return InvalidArgument("sparse field '" + s.name + "' names table '" + s.table +
                             "', which is not in tables");
    }
    f.multi_valued = s.multi_valued;
    f.missing = s.missing;
    f.sequence = s.pooling == Pooling::kSequence;
    f.max_length = s.max_length;
    f.missing_key = MissingFeatureKey(FieldSeed(s.name));
    f.seed = FieldSeed(s.key_field.empty() ? s.name : s.key_field);
    map.sparse_.push_back(std::move(f));
  }
  return map;
}

}  // namespace mtps
