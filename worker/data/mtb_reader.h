// MtbReader: the fast .mtb reader. The file is memory-mapped; reading a row group checks
// its checksum and layout and points a ColumnView straight at the mapped columns, so the
// only copy is the one into the batch.
//
//   MTPS_ASSIGN_OR_RETURN(auto reader, MtbReader::Open("train-0.mtb"));
//   MTPS_ASSIGN_OR_RETURN(MtbBinding binding, reader->Bind(map));   // spec vs file columns
//   ColumnView view;
//   for (int g = 0; g < reader->num_row_groups(); ++g) {
//     MTPS_RETURN_IF_ERROR(reader->ReadRowGroup(g, binding, &view));
//     ...
//   }
//
// Open() refuses a file with a bad magic, an unknown version, a corrupt schema or footer,
// or a truncated tail (naming the first row group that is cut off). ReadRowGroup()
// refuses a row group whose checksum or layout is wrong, naming file and row group.
// Thread-safety: after Open(), const methods (Bind, ReadRowGroup) may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "worker/data/column_block.h"
#include "worker/data/feature_map.h"
#include "worker/data/mtb_format.h"

namespace mtps {

// Where a FeatureMap's columns live in one file's schema.
struct MtbBinding {
  std::vector<int> label_column;
  std::vector<int> dense_column;
  std::vector<int> sparse_column;
};

class MtbReader {
 public:
  static StatusOr<std::unique_ptr<MtbReader>> Open(const std::string& path);
  ~MtbReader();
  MtbReader(const MtbReader&) = delete;
  MtbReader& operator=(const MtbReader&) = delete;

  const std::string& path() const { return path_; }
  const MtbSchema& schema() const { return schema_; }
  int num_row_groups() const { return static_cast<int>(groups_.size()); }
  int64_t row_group_rows(int g) const { return static_cast<int64_t>(groups_[g].rows); }
  int64_t total_rows() const { return total_rows_; }
  uint64_t file_bytes() const { return size_; }
  uint64_t row_group_bytes(int g) const { return groups_[g].payload_bytes + kMtbRowGroupHeaderBytes; }
  uint64_t row_group_offset(int g) const { return groups_[g].offset; }

  // Maps each label/dense/sparse column of `map` to this file's columns; refuses a spec
  // column the file lacks, naming it.
  StatusOr<MtbBinding> Bind(const FeatureMap& map) const;

  // Verifies row group `g` and points `view` at its columns (valid while the reader lives).
  Status ReadRowGroup(int g, const MtbBinding& binding, ColumnView* view) const;

 private:
  struct Group {
    uint64_t offset;
    uint64_t rows;
    uint64_t payload_bytes;
  };
  MtbReader(std::string path, const unsigned char* data, uint64_t size);
  Status ParseHeader();
  Status ParseFooter();
  // The footer is missing or broken: walk the row groups to say where the file ends.
  Status DiagnoseTail(const std::string& why) const;
  std::string GroupName(int g) const;

  std::string path_;
  const unsigned char* data_;
  uint64_t size_;
  uint64_t first_group_offset_ = 0;
  MtbSchema schema_;
  std::vector<Group> groups_;
  int64_t total_rows_ = 0;
};

}  // namespace mtps
