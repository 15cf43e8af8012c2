// Forward + backward throughput of the multi-task models on the CPU backend: MMoE with
// 8 experts of 64 units, towers of 32, 8 single-valued sparse fields of dim 16, 2 bce
// tasks, batch 1024 (the reference model), at 1 and 2 OpenBLAS threads; and the same
// MMoE with a ninth field, a behaviour sequence of 1..20 items of the target item's table
// (field f1), encoded by DIN (attention MLP [36]) or BST (2 heads, FFN 64, then DIN). The
// *Side models add the history's side sequence (model.sequence.side: one row of table f2
// per item, as the items' categories) and the options of the example specs: each item is
// [f1 row ⊕ f2 row], attended against [f1 ⊕ f2] with softmax weights (DIN with positions
// and an attention MLP of [64]).
// benchmarks/models_vs_torch.sh runs it beside the same models in PyTorch.
//
//   build/bin/models_bench --benchmark_filter=Mmoe   # counter samples/s (wall time);
//                                                    # CPU column: all threads of the process
#include <benchmark/benchmark.h>

#include <random>

#include "models/backend.h"
#include "models/blas_core.h"
#include "models/multitask_model.h"

namespace mtps::models {
namespace {

constexpr int kBatch = 1024, kFields = 8, kDim = 16, kRowsPerTable = 1000, kMaxLength = 20;

enum class Sequence { kNone, kDin, kBst, kDinSide, kBstSide };

bool HasSide(Sequence sequence) {
  return sequence == Sequence::kDinSide || sequence == Sequence::kBstSide;
}

JobSpec ReferenceSpec(ModelSpec::Type type, Sequence sequence = Sequence::kNone) {
  JobSpec spec;
  for (int f = 0; f < kFields; ++f) {
    const std::string name = "f" + std::to_string(f);
    spec.tables.push_back({.name = name, .dim = kDim});
    spec.sparse_fields.push_back({.name = name, .table = name});
  }
  spec.model.type = type;
  spec.model.experts = 8;
  spec.model.expert_units = {64};
  spec.model.tower_units = {32};
  spec.model.bottom_units = {64};
  spec.model.ple_levels = 1;
  spec.model.ple_shared_experts = 4;
  spec.model.ple_task_experts = 2;
  spec.tasks = {{.name = "ctr", .label = "click"}, {.name = "ctcvr", .label = "buy"}};
  spec.training.batch_size = kBatch;
  spec.training.eval_batch_size = kBatch;
  if (sequence != Sequence::kNone) {
    spec.sparse_fields.push_back({.name = "hist", .table = "f1", .multi_valued = true,
                                  .pooling = Pooling::kSequence, .max_length = kMaxLength});
    const bool din = sequence == Sequence::kDin || sequence == Sequence::kDinSide;
    spec.model.sequence = {.field = "hist", .target = "f1",
                           .encoder = din ? SequenceSpec::Encoder::kDin : SequenceSpec::Encoder::kBst,
                           .attention_hidden = {36}, .heads = 2, .ffn_hidden = 64};
    if (HasSide(sequence)) {
      spec.sparse_fields.push_back({.name = "hist_side", .table = "f2", .multi_valued = true,
                                    .pooling = Pooling::kSequence, .max_length = kMaxLength});
      spec.model.sequence.side = {{.field = "hist_side", .target = "f2"}};
      spec.model.sequence.din_positions = din;
      if (din) spec.model.sequence.attention_hidden = {64};
      spec.model.sequence.weights_softmax = true;
    }
  }
  return spec;
}

void BM_TrainStep(benchmark::State& state, ModelSpec::Type type, const char* device,
                  Sequence sequence = Sequence::kNone) {
  const int threads = static_cast<int>(state.range(0));
  JobSpec spec = ReferenceSpec(type, sequence);
  auto backend = MakeBackend<float>(device, threads);
  if (!backend.ok()) {
    state.SkipWithError(backend.status().ToString().c_str());
    return;
  }
  auto model = MultiTaskModel<float>::Create(spec, std::move(*backend));
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<std::vector<float>> tables(kFields, std::vector<float>(kRowsPerTable * kDim));
  std::vector<std::vector<int32_t>> rows(kFields, std::vector<int32_t>(kBatch));
  std::vector<int32_t> offsets(kBatch + 1);
  for (int b = 0; b <= kBatch; ++b) offsets[b] = b;
  std::vector<float> labels(kBatch * 2);
  for (auto& t : tables) {
    for (float& v : t) v = normal(rng);
  }
  for (auto& r : rows) {
    for (int32_t& v : r) v = static_cast<int32_t>(rng() % kRowsPerTable);
  }
  for (int b = 0; b < kBatch; ++b) {
    labels[2 * b] = static_cast<float>(rng() % 2);
    labels[2 * b + 1] = labels[2 * b] * static_cast<float>(rng() % 2);
  }
  ModelInput in;
  in.batch_size = kBatch;
  in.labels = labels.data();
  for (int f = 0; f < kFields; ++f) {
    in.fields.push_back({offsets.data(), rows[f].data()});
    in.tables.push_back({tables[f].data(), kRowsPerTable});
  }
  // The history: 1..kMaxLength items per record (uniform), rows of table f1.
  // Its side sequence: one row of table f2 per history item.
  std::vector<int32_t> history_offsets{0}, history_rows, side_rows;
  for (int b = 0; b < kBatch; ++b) {
    const int length = 1 + static_cast<int>(rng() % kMaxLength);
    for (int i = 0; i < length; ++i) {
      history_rows.push_back(static_cast<int32_t>(rng() % kRowsPerTable));
      side_rows.push_back(static_cast<int32_t>(rng() % kRowsPerTable));
    }
    history_offsets.push_back(static_cast<int32_t>(history_rows.size()));
  }
  if (sequence != Sequence::kNone) {
    in.fields.push_back({history_offsets.data(), history_rows.data()});
  }
  if (HasSide(sequence)) {
    in.fields.push_back({history_offsets.data(), side_rows.data()});
  }
  ModelOutput out;
  uint64_t step = 0;
  for (auto _ : state) {
    Status s = (*model)->Train(in, ++step, &out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.task_loss.data());
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kBatch,
                         benchmark::Counter::kIsRate);
}

#define MTPS_MODEL_BENCH(name, type, device, ...)                             \
  BENCHMARK_CAPTURE(BM_TrainStep, name, type, device, ##__VA_ARGS__)         \
      ->ArgName("threads")->UseRealTime()->MeasureProcessCPUTime()          \
      ->Unit(benchmark::kMillisecond)
MTPS_MODEL_BENCH(Mmoe, ModelSpec::Type::kMmoe, "cpu")->Arg(1)->Arg(2);
MTPS_MODEL_BENCH(SharedBottom, ModelSpec::Type::kSharedBottom, "cpu")->Arg(1);
MTPS_MODEL_BENCH(Ple, ModelSpec::Type::kPle, "cpu")->Arg(1);
MTPS_MODEL_BENCH(Esmm, ModelSpec::Type::kEsmm, "cpu")->Arg(1);
MTPS_MODEL_BENCH(MmoeDin, ModelSpec::Type::kMmoe, "cpu", Sequence::kDin)->Arg(1)->Arg(2);
MTPS_MODEL_BENCH(MmoeBst, ModelSpec::Type::kMmoe, "cpu", Sequence::kBst)->Arg(1)->Arg(2);
MTPS_MODEL_BENCH(MmoeDinSide, ModelSpec::Type::kMmoe, "cpu", Sequence::kDinSide)->Arg(1)->Arg(2);
MTPS_MODEL_BENCH(MmoeBstSide, ModelSpec::Type::kMmoe, "cpu", Sequence::kBstSide)->Arg(1)->Arg(2);
// Reported as an error (skipped) where there is no CUDA device or no CUDA build.
MTPS_MODEL_BENCH(MmoeCuda, ModelSpec::Type::kMmoe, "cuda:0")->Arg(1);

}  // namespace
}  // namespace mtps::models

// Says which OpenBLAS kernels ran (models/blas_core.h): the CPU backend picks the best.
int main(int argc, char** argv) {
  mtps::models::UseTheBestBlasKernels();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("blas_kernels", mtps::models::BlasCoreName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
