// libFuzzer target: the .mtb reader. Each input is a file: opened (mapped), bound to the
// seed data set's spec, every row group verified and copied into a batch as the training
// pipeline does.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <glog/logging.h>

#include "benchmarks/fuzz/fuzz_entry.h"
#include "benchmarks/fuzz/fuzz_inputs.h"
#include "worker/batch.h"
#include "worker/data/batch_assembler.h"
#include "worker/data/feature_map.h"
#include "worker/data/mtb_reader.h"

namespace mtps::fuzz {
namespace {

struct Harness {
  Harness() : map(Map()), assembler(map), file(".mtb") {}

  static FeatureMap Map() {
    StatusOr<JobSpec> spec =
        ParseJobSpec(GeneratedJobYaml(SeedDataOptions(DataSpec::Format::kMtb)), "mtb fuzz spec");
    StatusOr<FeatureMap> map = spec.ok() ? FeatureMap::Create(*spec) : spec.status();
    if (!map.ok()) {
      std::fprintf(stderr, "mtb fuzz: %s\n", map.status().ToString().c_str());
      std::abort();
    }
    return *std::move(map);
  }

  void Run(const uint8_t* data, size_t size) {
    StatusOr<std::unique_ptr<MtbReader>> reader = MtbReader::Open(file.Write(data, size));
    if (!reader.ok()) return;
    StatusOr<MtbBinding> binding = (*reader)->Bind(map);
    if (!binding.ok()) return;
    ColumnView view;
    for (int g = 0; g < (*reader)->num_row_groups(); ++g) {
      if (!(*reader)->ReadRowGroup(g, *binding, &view).ok()) continue;
      assembler.Begin(&batch);
      assembler.AppendRange(view, 0, view.rows, &batch);
      assembler.Finish(&batch);
    }
  }

  FeatureMap map;
  BatchAssembler assembler;
  Batch batch;
  ScratchFile file;
};

}  // namespace
}  // namespace mtps::fuzz

MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
