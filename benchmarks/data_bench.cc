// Data-path throughput: generated records read into ready batches (with per-table dedup)
// from .mtb and from CSV by one reader thread, and generator speed.
//
//   build/bin/data_bench [--benchmark_filter=Mtb] [--rows=N]
// Reports rows/s (items_per_second) and input MB/s (bytes_per_second); wall time, since
// the reader runs on its own thread.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "worker/data/batch_pipeline.h"
#include "worker/data/datagen.h"
#include "worker/data/input_files.h"

namespace mtps {
namespace {

int64_t g_rows = 1000000;

struct DataSet {
  std::string dir;
  JobSpec spec;
  FeatureMap map;
  std::vector<std::string> mtb, csv;
  uint64_t mtb_bytes = 0, csv_bytes = 0;
};

DatagenOptions GeneratorOptions(const std::string& dir, DataSpec::Format format, int64_t rows) {
  DatagenOptions o;
  o.out_dir = dir;
  o.rows = rows;
  o.eval_fraction = 0.0;
  o.train_files = 2;
  o.format = format;
  o.world.seed = 42;
  o.world.users = 100000;
  o.world.items = 50000;
  o.threads = 1;
  return o;
}

const DataSet& Data() {
  static DataSet* data = [] {
    auto* d = new DataSet;
    d->dir = (std::filesystem::temp_directory_path() / ("mtps_data_bench_" + std::to_string(::getpid()))).string();
    for (DataSpec::Format f : {DataSpec::Format::kMtb, DataSpec::Format::kCsv}) {
      StatusOr<DatagenReport> r = GenerateDataset(GeneratorOptions(d->dir + (f == DataSpec::Format::kMtb ? "/mtb" : "/csv"), f, g_rows));
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      (f == DataSpec::Format::kMtb ? d->mtb : d->csv) = r->train_files;
    }
    d->spec = *LoadJobSpec(d->dir + "/mtb/job.yaml");
    d->map = *FeatureMap::Create(d->spec);
    for (const auto& f : d->mtb) d->mtb_bytes += std::filesystem::file_size(f);
    for (const auto& f : d->csv) d->csv_bytes += std::filesystem::file_size(f);
    std::atexit([] { std::filesystem::remove_all(Data().dir); });
    return d;
  }();
  return *data;
}

void ReadIntoBatches(benchmark::State& state, DataSpec::Format format) {
  const DataSet& d = Data();
  PipelineOptions o;
  o.format = format;
  o.batch_size = 1024;
  o.shuffle = state.range(0) != 0;
  const auto& files = format == DataSpec::Format::kMtb ? d.mtb : d.csv;
  int64_t records = 0, keys = 0, unique = 0;
  for (auto _ : state) {
    auto p = BatchPipeline::Create(d.map, files, o);
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      return;
    }
    while (true) {
      StatusOr<Batch*> b = (*p)->Next();
      if (!b.ok() || *b == nullptr) break;
      records += (*b)->size;
      for (const auto& f : (*b)->fields) keys += static_cast<int64_t>(f.keys.size());
      for (const auto& t : (*b)->tables) unique += static_cast<int64_t>(t.unique_keys.size());
      (*p)->Release(*b);
    }
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(format == DataSpec::Format::kMtb ? d.mtb_bytes : d.csv_bytes));
  state.counters["keys/row"] = static_cast<double>(keys) / static_cast<double>(records);
  state.counters["unique/row"] = static_cast<double>(unique) / static_cast<double>(records);
}

void BM_MtbToBatches(benchmark::State& state) { ReadIntoBatches(state, DataSpec::Format::kMtb); }
void BM_CsvToBatches(benchmark::State& state) { ReadIntoBatches(state, DataSpec::Format::kCsv); }
BENCHMARK(BM_MtbToBatches)->ArgName("shuffle")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CsvToBatches)->ArgName("shuffle")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Generate(benchmark::State& state) {
  const DataSpec::Format format = state.range(0) == 0 ? DataSpec::Format::kMtb : DataSpec::Format::kCsv;
  const int64_t rows = 200000;
  const std::string dir = Data().dir + "/gen";
  for (auto _ : state) {
    StatusOr<DatagenReport> r = GenerateDataset(GeneratorOptions(dir, format, rows));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * rows);
}
BENCHMARK(BM_Generate)->ArgName("csv")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mtps

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rows=", 7) == 0) mtps::g_rows = std::atoll(argv[i] + 7);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
