// InputIndex: the units that sharding and shuffling deal out over a job's input files —
// every .mtb row group, and every chunk of up to csv_chunk_records consecutive CSV records.
//
//   MTPS_ASSIGN_OR_RETURN(auto index, InputIndex::Build(map, files, {.format = kCsv}));
//   for (const InputUnit& u : index->units()) ...   // file, byte offset and line of a chunk
//
// A CSV file is indexed by one pass that splits records without parsing their cells, noting
// where every chunk starts (byte offset and line), so a reader can later Seek() to any
// chunk: shuffled reading then needs memory for one window of records, not for the file.
// .mtb files are opened (memory-mapped) and bound to the feature map once, and the readers
// are shared by every pipeline built on the index. Build() checks every file's header or
// schema, so a spec column that a file lacks is refused before training starts.
// Thread-safety: immutable after Build(); share it between pipelines and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "worker/data/feature_map.h"
#include "worker/data/mtb_reader.h"

namespace mtps {

struct InputUnit {
  int file = 0;
  int row_group = -1;   // .mtb row group; -1 for a CSV chunk
  uint64_t offset = 0;  // CSV: byte offset of the chunk's first record
  int64_t line = 0;     // CSV: the line that record starts on
  int64_t records = 0;  // records in the unit (CSV: good and bad ones)
};

struct InputIndexOptions {
  DataSpec::Format format = DataSpec::Format::kMtb;
  char csv_delimiter = ',';
  int64_t csv_chunk_records = 4096;
};

class InputIndex {
 public:
  static StatusOr<std::shared_ptr<const InputIndex>> Build(const FeatureMap& map,
                                                           std::vector<std::string> files,
                                                           const InputIndexOptions& options);

  const InputIndexOptions& options() const { return options_; }
  const std::vector<std::string>& files() const { return files_; }
  // Every unit of every file, in file order.
  const std::vector<InputUnit>& units() const { return units_; }
  // .mtb input only.
  const MtbReader& mtb(int file) const { return *mtb_[file]; }
  const MtbBinding& binding(int file) const { return bindings_[file]; }

 private:
  InputIndex() = default;
  Status IndexCsv(const FeatureMap& map, int file);

  InputIndexOptions options_;
  std::vector<std::string> files_;
  std::vector<InputUnit> units_;
  std::vector<std::unique_ptr<MtbReader>> mtb_;
  std::vector<MtbBinding> bindings_;
};

}  // namespace mtps
