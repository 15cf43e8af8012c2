// Checkpoint cost per 1M rows (dim 16, Adagrad): how long one server's table takes to
// write (what workers wait for during an async checkpoint's cut: they pause while the
// servers write), with the bytes written, and how long a restarted server takes to load it.
//
//   build-x/bin/checkpoint_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
//
// Rows are created by pushes of 4096 keys before timing; files go to $TMPDIR. Time is per
// 2^20 rows.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <algorithm>
#include <vector>

#include "ps/checkpoint.h"
#include "ps/sharded_table.h"

namespace mtps::ps {
namespace {

constexpr size_t kBatch = 4096;

TableSpec Spec() {
  TableSpec spec;
  spec.name = "bench";
  spec.dim = 16;
  spec.optimizer.type = OptimizerSpec::Type::kAdagrad;
  spec.optimizer.lr = 0.05f;
  return spec;
}

std::unique_ptr<ShardedTables> Filled(int64_t rows) {
  auto tables = ShardedTables::Create({Spec()}, /*num_shards=*/4);
  if (!tables.ok()) std::abort();
  std::vector<uint64_t> keys(kBatch);
  const std::vector<float> grads(kBatch * 16, 0.01f);
  for (int64_t done = 0; done < rows; done += kBatch) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(kBatch, rows - done));
    for (size_t i = 0; i < n; ++i) keys[i] = static_cast<uint64_t>(done + i) * 0x9e3779b97f4a7c15ull + 1;
    if (!(*tables)->Push(0, keys.data(), grads.data(), n, 1).ok()) std::abort();
  }
  return std::move(*tables);
}

std::string Path() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/checkpoint_bench_" + std::to_string(::getpid()) + ".ckpt";
}

void BM_CheckpointWrite(benchmark::State& state) {
  const int64_t rows = state.range(0);
  auto tables = Filled(rows);
  auto fs = NewPosixFileSystem();
  const std::string path = Path();
  uint64_t bytes = 0;
  for (auto _ : state) {
    StatusOr<CheckpointFileInfo> info = SaveTableCheckpoint(*fs, path, *tables, 0);
    if (!info.ok()) state.SkipWithError(info.status().ToString().c_str());
    else bytes = info->bytes;
  }
  std::filesystem::remove(path);
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["rows"] = static_cast<double>(rows);
}

void BM_CheckpointRestore(benchmark::State& state) {
  const int64_t rows = state.range(0);
  auto fs = NewPosixFileSystem();
  const std::string path = Path();
  {
    auto tables = Filled(rows);
    if (!SaveTableCheckpoint(*fs, path, *tables, 0).ok()) std::abort();
  }
  for (auto _ : state) {
    auto parts = LoadTableParts(*fs, path, Spec(), /*num_shards=*/4);
    if (!parts.ok()) state.SkipWithError(parts.status().ToString().c_str());
    benchmark::DoNotOptimize(parts);
  }
  std::filesystem::remove(path);
  state.counters["rows"] = static_cast<double>(rows);
}

BENCHMARK(BM_CheckpointWrite)->Arg(1 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CheckpointRestore)->Arg(1 << 16)->Arg(1 << 18)->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mtps::ps

BENCHMARK_MAIN();
