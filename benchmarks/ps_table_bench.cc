// In-process parameter-server table benchmarks: row pushes (optimizer updates) and pulls
// per second on one thread, dim 8/16/64/128, Adagrad and Adam, Zipf(1.1) keys over 10M
// distinct; bytes per row against the ideal (dim x 4 + optimizer state) as counters.
//
//   build-x/bin/ps_table_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// The key stream is drawn once, before any timing; each table is warmed by one pass over
// the stream (so the timed loop sees the steady mix of hits and first sightings), then
// requests of 4096 keys are replayed from it.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "ps/embedding_table.h"
#include "ps/sharded_table.h"
#include "tests/ps/zipf_keys.h"

namespace mtps::ps {
namespace {

constexpr size_t kStreamKeys = size_t{1} << 21;
constexpr size_t kBatch = 4096;
constexpr uint64_t kDistinct = 10'000'000;

const std::vector<uint64_t>& KeyStream() {
  static const std::vector<uint64_t> stream = [] {
    testing::ZipfKeys zipf(kDistinct, 1.1, 2024);
    std::vector<uint64_t> keys(kStreamKeys);
    for (auto& k : keys) k = zipf.NextKey();
    return keys;
  }();
  return stream;
}

TableSpec SpecFor(int dim, OptimizerSpec::Type type) {
  TableSpec spec;
  spec.name = "bench";
  spec.dim = dim;
  spec.optimizer.type = type;
  spec.seed = 1;
  return spec;
}

std::vector<float> Gradients(int dim) {
  std::vector<float> g(kBatch * dim);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.01f);
  for (auto& x : g) x = normal(rng);
  return g;
}

void ReportFootprint(benchmark::State& state, const EmbeddingTable& table) {
  const double per_row = double(table.MemoryBytes()) / double(table.rows());
  state.counters["rows"] = double(table.rows());
  state.counters["bytes_per_row"] = per_row;
  state.counters["x_ideal"] = per_row / double(table.IdealRowBytes());
}

// Args: dim, optimizer type (1 = Adagrad, 2 = Adam).
void BM_TablePush(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const auto type = static_cast<OptimizerSpec::Type>(state.range(1));
  const auto& keys = KeyStream();
  auto table = std::move(EmbeddingTable::Create(SpecFor(dim, type))).value();
  const auto grads = Gradients(dim);
  for (size_t off = 0; off + kBatch <= keys.size(); off += kBatch) {
    (void)table->Push(keys.data() + off, grads.data(), kBatch, 0);
  }
  size_t off = 0;
  uint64_t step = 1;
  for (auto _ : state) {
    auto r = table->Push(keys.data() + off, grads.data(), kBatch, step++);
    benchmark::DoNotOptimize(r);
    off = off + 2 * kBatch <= keys.size() ? off + kBatch : 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
  state.SetBytesProcessed(int64_t(state.iterations()) * kBatch * (8 + 4 * dim));
  ReportFootprint(state, *table);
}

void BM_TablePull(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const auto type = static_cast<OptimizerSpec::Type>(state.range(1));
  const auto& keys = KeyStream();
  auto table = std::move(EmbeddingTable::Create(SpecFor(dim, type))).value();
  std::vector<float> out(kBatch * dim);
  for (size_t off = 0; off + kBatch <= keys.size(); off += kBatch) {
    table->Pull(keys.data() + off, kBatch, out.data(), 0, true);
  }
  size_t off = 0;
  uint64_t step = 1;
  for (auto _ : state) {
    table->Pull(keys.data() + off, kBatch, out.data(), step++, true);
    benchmark::DoNotOptimize(out.data());
    off = off + 2 * kBatch <= keys.size() ? off + kBatch : 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
  state.SetBytesProcessed(int64_t(state.iterations()) * kBatch * (8 + 4 * dim));
  ReportFootprint(state, *table);
}

void TableArgs(benchmark::internal::Benchmark* b) {
  for (int type : {1, 2}) {
    for (int dim : {8, 16, 64, 128}) b->Args({dim, type});
  }
  b->ArgNames({"dim", "opt"})->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_TablePush)->Apply(TableArgs);
BENCHMARK(BM_TablePull)->Apply(TableArgs);

// The whole server path for one request: validation, split by shard, queueing, the
// shards' work and completion. Arg: shard threads (items are keys; time is wall time).
void BM_ShardedPush(benchmark::State& state) {
  const int shards = static_cast<int>(state.range(0));
  const auto& keys = KeyStream();
  auto tables =
      std::move(ShardedTables::Create({SpecFor(16, OptimizerSpec::Type::kAdagrad)}, shards)).value();
  const auto grads = Gradients(16);
  for (size_t off = 0; off + kBatch <= keys.size(); off += kBatch) {
    (void)tables->Push(0, keys.data() + off, grads.data(), kBatch, 0);
  }
  size_t off = 0;
  for (auto _ : state) {
    auto r = tables->Push(0, keys.data() + off, grads.data(), kBatch, 1);
    benchmark::DoNotOptimize(r);
    off = off + 2 * kBatch <= keys.size() ? off + kBatch : 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}
BENCHMARK(BM_ShardedPush)->Arg(1)->Arg(2)->ArgName("shards")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mtps::ps

BENCHMARK_MAIN();
