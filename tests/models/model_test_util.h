// Helpers for the models tests: a small JobSpec with two tables, multi-valued fields and
// dense features, random model inputs that own their storage, and finite differences.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "models/model_input.h"
#include "protocol/job_spec.h"

namespace mtps::models::testing {

// Tables user (dim 4) and item (dim 3); fields user (sum), item (sum), history (mean,
// multi-valued, reads table item); 2 dense features; tasks ctr (bce) and a second task
// with `second_loss`. Small layers so finite differences over them stay fast.
inline JobSpec SmallSpec(ModelSpec::Type type, TaskSpec::Loss second_loss = TaskSpec::Loss::kBce,
                         int tasks = 2) {
  JobSpec spec;
  spec.tables.push_back({.name = "user", .dim = 4});
  spec.tables.push_back({.name = "item", .dim = 3});
  spec.sparse_fields.push_back({.name = "user", .table = "user"});
  spec.sparse_fields.push_back({.name = "item", .table = "item"});
  spec.sparse_fields.push_back(
      {.name = "history", .table = "item", .multi_valued = true, .pooling = Pooling::kMean});
  spec.dense_fields.push_back({.name = "price"});
  spec.dense_fields.push_back({.name = "age"});
  spec.model.type = type;
  spec.model.bottom_units = {6, 5};
  spec.model.experts = 3;
  spec.model.expert_units = {5, 4};
  spec.model.tower_units = {3};
  spec.model.ple_levels = 2;
  spec.model.ple_shared_experts = 2;
  spec.model.ple_task_experts = 1;
  spec.tasks.push_back({.name = "ctr", .label = "click", .loss = TaskSpec::Loss::kBce});
  spec.tasks.push_back({.name = "second", .label = "second", .loss = second_loss, .weight = 0.7f});
  for (int t = 2; t < tasks; ++t) {
    spec.tasks.push_back({.name = "extra" + std::to_string(t), .label = "extra",
                          .loss = TaskSpec::Loss::kBce, .weight = 0.5f});
  }
  spec.training.batch_size = 8;
  spec.training.eval_batch_size = 8;
  spec.training.seed = 7;
  return spec;
}

// SmallSpec with both tables at dim 4 (dot and fm need one dim), `history` an ordered
// sequence of at most 3 items read by `encoder` against the target field `item`, and the
// interaction layer `interaction`.
inline JobSpec SequenceSpecOf(ModelSpec::Type type, SequenceSpec::Encoder encoder,
                              InteractionSpec interaction = {},
                              TaskSpec::Loss second_loss = TaskSpec::Loss::kBce) {
  JobSpec spec = SmallSpec(type, second_loss);
  spec.tables[1].dim = 4;
  spec.sparse_fields[2].pooling = Pooling::kSequence;
  spec.sparse_fields[2].max_length = 3;
  spec.model.sequence = {.field = "history", .target = "item", .encoder = encoder,
                         .attention_hidden = {5}, .heads = 2, .ffn_hidden = 6};
  spec.model.interaction = interaction;
  return spec;
}

// Adds DIN's category side sequence to a SequenceSpecOf spec: table cat (dim `cat_dim`),
// fields cat (the target's category) and history_cats (a sequence aligned with history),
// read by model.sequence.side.
inline JobSpec WithCategorySide(JobSpec spec, int cat_dim) {
  spec.tables.push_back({.name = "cat", .dim = cat_dim});
  spec.sparse_fields.push_back({.name = "cat", .table = "cat"});
  spec.sparse_fields.push_back({.name = "history_cats", .table = "cat", .multi_valued = true,
                                .pooling = Pooling::kSequence, .max_length = 3});
  spec.model.sequence.side = {{.field = "history_cats", .target = "cat"}};
  return spec;
}

// A random batch for `spec` that owns its buffers; input() points into them. A side
// sequence (model.sequence.side) gets as many values per record as the sequence field.
template <typename T>
struct RandomBatch {
  std::vector<std::vector<int32_t>> offsets, rows;
  std::vector<std::vector<T>> tables;
  std::vector<int> num_rows;
  std::vector<T> dense, labels;
  int batch = 0;

  RandomBatch(const JobSpec& spec, int batch_size, uint64_t seed, int rows_per_table = 6)
      : batch(batch_size) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 0.5);
    std::uniform_int_distribution<int> row(0, rows_per_table - 1);
    for (const TableSpec& t : spec.tables) {
      tables.emplace_back(static_cast<size_t>(rows_per_table) * t.dim);
      for (T& v : tables.back()) v = T(normal(rng));
      num_rows.push_back(rows_per_table);
    }
    int sequence = -1;
    for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
      if (spec.sparse_fields[i].name == spec.model.sequence.field) sequence = static_cast<int>(i);
    }
    for (const SparseFieldSpec& f : spec.sparse_fields) {
      bool side = false;
      for (const SequenceSpec::Side& s : spec.model.sequence.side) side |= s.field == f.name;
      std::vector<int32_t> off{0}, r;
      for (int b = 0; b < batch; ++b) {
        // Multi-valued fields get 0..3 values (empty bags and duplicates included).
        int n = f.multi_valued ? static_cast<int>(rng() % 4) : 1;
        if (side) n = offsets[sequence][b + 1] - offsets[sequence][b];
        for (int i = 0; i < n; ++i) r.push_back(row(rng));
        off.push_back(static_cast<int32_t>(r.size()));
      }
      offsets.push_back(std::move(off));
      rows.push_back(std::move(r));
    }
    dense.resize(static_cast<size_t>(batch) * spec.dense_fields.size());
    for (T& v : dense) v = T(normal(rng));
    labels.resize(static_cast<size_t>(batch) * spec.tasks.size());
    for (int b = 0; b < batch; ++b) {
      for (size_t t = 0; t < spec.tasks.size(); ++t) {
        labels[b * spec.tasks.size() + t] = spec.tasks[t].loss == TaskSpec::Loss::kBce
                                                ? T(rng() % 2)
                                                : T(normal(rng) * 2);
      }
    }
  }

  ModelInputT<T> input() const {
    ModelInputT<T> in;
    in.batch_size = batch;
    in.dense = dense.data();
    in.labels = labels.data();
    for (size_t f = 0; f < offsets.size(); ++f) {
      in.fields.push_back({offsets[f].data(), rows[f].data()});
    }
    for (size_t t = 0; t < tables.size(); ++t) in.tables.push_back({tables[t].data(), num_rows[t]});
    return in;
  }
};


// Every model type, for INSTANTIATE_TEST_SUITE_P(AllModels, Suite, AllModelTypes(),
// ModelTypeParamName): one place decides which models every parameterised suite covers.
inline auto AllModelTypes() {
  return ::testing::Values(ModelSpec::Type::kSharedBottom, ModelSpec::Type::kMmoe,
                           ModelSpec::Type::kPle, ModelSpec::Type::kEsmm);
}
inline std::string ModelTypeParamName(const ::testing::TestParamInfo<ModelSpec::Type>& info) {
  return ModelTypeName(info.param);
}

}  // namespace mtps::models::testing
