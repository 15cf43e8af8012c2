// InputIndex: opening .mtb files into row-group units, and the record-splitting pass that
// cuts CSV files into chunks with their byte offsets and lines.
#include "worker/data/input_index.h"

#include "worker/data/csv_reader.h"

namespace mtps {

StatusOr<std::shared_ptr<const InputIndex>> InputIndex::Build(const FeatureMap& map,
                                                              std::vector<std::string> files,
                                                              const InputIndexOptions& options) {
  if (files.empty()) return InvalidArgument("no input files");
  if (options.csv_chunk_records <= 0) {
    return InvalidArgument("csv_chunk_records must be > 0, got " + std::to_string(options.csv_chunk_records));
  }
  std::shared_ptr<InputIndex> index(new InputIndex());
  index->options_ = options;
  index->files_ = std::move(files);
  for (size_t f = 0; f < index->files_.size(); ++f) {
    if (options.format == DataSpec::Format::kCsv) {
      MTPS_RETURN_IF_ERROR(index->IndexCsv(map, static_cast<int>(f)));
      continue;
    }
    MTPS_ASSIGN_OR_RETURN(std::unique_ptr<MtbReader> reader, MtbReader::Open(index->files_[f]));
    MTPS_ASSIGN_OR_RETURN(MtbBinding binding, reader->Bind(map));
    for (int g = 0; g < reader->num_row_groups(); ++g) {
      index->units_.push_back({.file = static_cast<int>(f), .row_group = g, .records = reader->row_group_rows(g)});
    }
    index->mtb_.push_back(std::move(reader));
    index->bindings_.push_back(std::move(binding));
  }
  return std::shared_ptr<const InputIndex>(std::move(index));
}

Status InputIndex::IndexCsv(const FeatureMap& map, int file) {
  // The policy does not matter here: Skip() never parses cells, and a record whose quoting
  // is broken counts as one record (the reading pass reports it with its line).
  MTPS_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                        CsvReader::Open(files_[file], map, DataSpec::BadRecordPolicy::kSkip,
                                        options_.csv_delimiter));
  while (true) {
    const uint64_t offset = reader->offset();
    const int64_t line = reader->line();
    MTPS_ASSIGN_OR_RETURN(int64_t n, reader->Skip(options_.csv_chunk_records));
    if (n == 0) break;
    units_.push_back({.file = file, .offset = offset, .line = line, .records = n});
  }
  return Status::OK();
}

}  // namespace mtps
