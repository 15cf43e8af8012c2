// libFuzzer target: the CSV reader. Each input is a file: header checked against the seed
// data set's spec, then every record read (bad ones skipped and counted, as under
// on_bad_record: skip) and copied into a batch as the training pipeline does.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <glog/logging.h>

#include "benchmarks/fuzz/fuzz_entry.h"
#include "benchmarks/fuzz/fuzz_inputs.h"
#include "worker/batch.h"
#include "worker/data/batch_assembler.h"
#include "worker/data/csv_reader.h"
#include "worker/data/feature_map.h"

namespace mtps::fuzz {
namespace {

// Small reads make records straddle the reader's calls, as they do in long files.
constexpr int64_t kRowsPerRead = 7;

struct Harness {
  Harness()
      : map(Map()),
        assembler(map),
        block(map.num_tasks(), map.num_dense(), map.num_sparse()),
        file(".csv") {}

  static FeatureMap Map() {
    StatusOr<JobSpec> spec =
        ParseJobSpec(GeneratedJobYaml(SeedDataOptions(DataSpec::Format::kCsv)), "csv fuzz spec");
    StatusOr<FeatureMap> map = spec.ok() ? FeatureMap::Create(*spec) : spec.status();
    if (!map.ok()) {
      std::fprintf(stderr, "csv fuzz: %s\n", map.status().ToString().c_str());
      std::abort();
    }
    return *std::move(map);
  }

  void Run(const uint8_t* data, size_t size) {
    const std::string& path = file.Write(data, size);
    StatusOr<std::unique_ptr<CsvReader>> reader =
        CsvReader::Open(path, map, DataSpec::BadRecordPolicy::kSkip);
    if (!reader.ok()) return;
    while (true) {
      block.Clear();
      StatusOr<int64_t> rows = (*reader)->Read(kRowsPerRead, &block);
      if (!rows.ok() || *rows == 0) break;
      ColumnView view = ColumnView::Of(block);
      assembler.Begin(&batch);
      assembler.AppendRange(view, 0, view.rows, &batch);
      assembler.Finish(&batch);
    }
  }

  FeatureMap map;
  BatchAssembler assembler;
  ColumnBlock block;
  Batch batch;
  ScratchFile file;
};

}  // namespace
}  // namespace mtps::fuzz

MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
