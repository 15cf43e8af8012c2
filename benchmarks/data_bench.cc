// Data-path throughput: generated records read into ready batches (with per-table dedup)
// from .mtb and from CSV by one reader thread, and generator speed.
//
//   build/bin/data_bench [--benchmark_filter=Mtb] [--rows=N]
// Reports rows/s (items_per_second) and input MB/s (bytes_per_second) over wall time (the
// reader runs on its own thread), and rows and MB per CPU second of the whole process
// (rows/cpu_s, MB/cpu_s): the reader thread does nearly all the work, so on a loaded
// machine these are the per-thread figures to read.
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "worker/data/batch_pipeline.h"
#include "worker/data/datagen.h"
#include "worker/data/input_files.h"

namespace mtps {
namespace {

int64_t g_rows = 1000000;

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

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

// One iteration = one epoch of a long-lived pipeline, as in training: the file stays
// mapped and the batch pool warm, so the figures are the steady state.
void ReadIntoBatches(benchmark::State& state, DataSpec::Format format) {
  const DataSet& d = Data();
  PipelineOptions o;
  o.format = format;
  o.batch_size = 1024;
  o.shuffle = state.range(0) != 0;
  o.epochs = 1 << 20;
  const auto& files = format == DataSpec::Format::kMtb ? d.mtb : d.csv;
  auto p = BatchPipeline::Create(d.map, files, o);
  if (!p.ok()) {
    state.SkipWithError(p.status().ToString().c_str());
    return;
  }
  BatchPipeline& pipeline = **p;
  const int64_t epoch_rows = g_rows;  // eval_fraction 0: every row is a train row
  {  // One warm-up epoch.
    int64_t n = 0;
    while (n < epoch_rows) {
      Batch* b = *pipeline.Next();
      n += b->size;
      pipeline.Release(b);
    }
  }
  int64_t records = 0, keys = 0, unique = 0;
  const double cpu_start = ProcessCpuSeconds();
  for (auto _ : state) {
    int64_t n = 0;
    while (n < epoch_rows) {
      StatusOr<Batch*> b = pipeline.Next();
      if (!b.ok() || *b == nullptr) {
        state.SkipWithError("pipeline ended early");
        return;
      }
      n += (*b)->size;
      for (const auto& f : (*b)->fields) keys += static_cast<int64_t>(f.keys.size());
      for (const auto& t : (*b)->tables) unique += static_cast<int64_t>(t.unique_keys.size());
      pipeline.Release(*b);
    }
    records += n;
  }
  const double cpu = ProcessCpuSeconds() - cpu_start;
  const double bytes = static_cast<double>(state.iterations()) *
                       static_cast<double>(format == DataSpec::Format::kMtb ? d.mtb_bytes : d.csv_bytes);
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["rows/cpu_s"] = static_cast<double>(records) / cpu;
  state.counters["MB/cpu_s"] = bytes / 1e6 / cpu;
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
  const double cpu_start = ProcessCpuSeconds();
  for (auto _ : state) {
    StatusOr<DatagenReport> r = GenerateDataset(GeneratorOptions(dir, format, rows));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.counters["rows/cpu_s"] = static_cast<double>(state.iterations() * rows) / (ProcessCpuSeconds() - cpu_start);
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
