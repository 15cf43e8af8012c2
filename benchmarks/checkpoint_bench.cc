// Checkpoint cost per 1M rows (dim 16, Adagrad): how long one server's table takes to
// write, whole or as an increment with 1% or 10% of its rows changed (what workers wait for
// during an async checkpoint's cut: they pause while the servers write), with the bytes
// written, and how long a restarted server takes to load it: the whole file alone, or the
// whole file and a chain of increments.
//
//   build-x/bin/checkpoint_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// Rows are created by pushes of 4096 keys before timing; files go to $TMPDIR. Time is per
// 2^20 rows. Increments: Arg(0) = rows changed per checkpoint in percent; restore of a
// chain: Args({percent, increments}).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ps/checkpoint.h"
#include "ps/sharded_table.h"

namespace mtps::ps {
namespace {

constexpr size_t kBatch = 4096;
constexpr int64_t kRows = int64_t{1} << 20;

TableSpec Spec() {
  TableSpec spec;
  spec.name = "bench";
  spec.dim = 16;
  spec.optimizer.type = OptimizerSpec::Type::kAdagrad;
  spec.optimizer.lr = 0.05f;
  return spec;
}

uint64_t Key(int64_t row) { return static_cast<uint64_t>(row) * 0x9e3779b97f4a7c15ull + 1; }

void PushKeys(ShardedTables& tables, const std::vector<uint64_t>& keys, uint64_t step) {
  const std::vector<float> grads(kBatch * 16, 0.01f);
  for (size_t done = 0; done < keys.size(); done += kBatch) {
    const size_t n = std::min(kBatch, keys.size() - done);
    if (!tables.Push(0, keys.data() + done, grads.data(), n, step).ok()) std::abort();
  }
}

std::unique_ptr<ShardedTables> Filled(int64_t rows) {
  auto tables = ShardedTables::Create({Spec()}, /*num_shards=*/4);
  if (!tables.ok()) std::abort();
  std::vector<uint64_t> keys(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) keys[static_cast<size_t>(i)] = Key(i);
  PushKeys(**tables, keys, 1);
  return std::move(*tables);
}

// Changes `percent` of the rows, a different spread-out set for each `round`.
void Touch(ShardedTables& tables, int64_t rows, int64_t percent, uint64_t round) {
  std::vector<uint64_t> keys;
  for (int64_t i = 0; i < rows; ++i) {
    if ((static_cast<uint64_t>(i) * 7919 + round * 37) % 100 < static_cast<uint64_t>(percent))
      keys.push_back(Key(i));
  }
  PushKeys(tables, keys, round + 2);
}

std::string Path(const std::string& tag = "") {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/checkpoint_bench_" + std::to_string(::getpid()) +
         tag + ".ckpt";
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

// An increment over the previous checkpoint after `percent` of the rows changed.
void BM_CheckpointIncrementWrite(benchmark::State& state) {
  const int64_t percent = state.range(0);
  auto tables = Filled(kRows);
  auto fs = NewPosixFileSystem();
  const std::string path = Path();
  if (!SaveTableCheckpoint(*fs, path, *tables, 0).ok()) std::abort();
  uint64_t bytes = 0, id = 1;
  for (auto _ : state) {
    state.PauseTiming();
    Touch(*tables, kRows, percent, id);
    state.ResumeTiming();
    StatusOr<CheckpointFileInfo> info = SaveTableIncrement(*fs, path, *tables, 0, id + 1, id);
    if (!info.ok()) state.SkipWithError(info.status().ToString().c_str());
    else bytes = info->bytes;
    ++id;
  }
  std::filesystem::remove(path);
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["rows"] = static_cast<double>(kRows);
  state.counters["changed_rows"] = static_cast<double>(kRows * percent / 100);
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

// The whole file, then `increments` increments of `percent` changed rows each.
void BM_CheckpointRestoreChain(benchmark::State& state) {
  const int64_t percent = state.range(0);
  const int64_t increments = state.range(1);
  auto fs = NewPosixFileSystem();
  std::vector<ChainFile> chain;
  uint64_t increment_bytes = 0;
  {
    auto tables = Filled(kRows);
    for (int64_t i = 0; i <= increments; ++i) {
      const uint64_t id = static_cast<uint64_t>(i) + 1;
      const std::string path = Path("_" + std::to_string(id));
      CheckpointManifest manifest;
      manifest.id = id;
      if (i == 0) {
        if (!SaveTableCheckpoint(*fs, path, *tables, 0).ok()) std::abort();
        chain.push_back({path, manifest, 0});
        continue;
      }
      Touch(*tables, kRows, percent, id);
      StatusOr<CheckpointFileInfo> info = SaveTableIncrement(*fs, path, *tables, 0, id, id - 1);
      if (!info.ok()) std::abort();
      increment_bytes += info->bytes;
      chain.push_back({path, manifest, id - 1});
    }
  }
  for (auto _ : state) {
    auto parts = LoadTableChain(*fs, chain, Spec(), /*num_shards=*/4);
    if (!parts.ok()) state.SkipWithError(parts.status().ToString().c_str());
    benchmark::DoNotOptimize(parts);
  }
  for (const ChainFile& f : chain) std::filesystem::remove(f.path);
  state.counters["increment_bytes"] = static_cast<double>(increment_bytes);
  state.counters["rows"] = static_cast<double>(kRows);
}

BENCHMARK(BM_CheckpointWrite)->Arg(kRows)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CheckpointIncrementWrite)->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_CheckpointRestore)->Arg(1 << 16)->Arg(1 << 18)->Arg(kRows)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CheckpointRestoreChain)->Args({1, 1})->Args({10, 1})->Args({1, 10})->Args({10, 10})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mtps::ps

BENCHMARK_MAIN();
