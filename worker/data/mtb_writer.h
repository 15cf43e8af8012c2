// MtbWriter: streams records into a .mtb file (mtb_format.h), one checksummed row group
// at a time, so memory stays bounded by one row group whatever the file's size.
//
//   MTPS_ASSIGN_OR_RETURN(auto w, MtbWriter::Create("train-0.mtb", MtbSchema::Of(map)));
//   MTPS_RETURN_IF_ERROR(w->Append(ColumnView::Of(block)));   // any number of times
//   MTPS_RETURN_IF_ERROR(w->Close());                         // footer, then rename
//
// The file is written atomically (base/atomic_file.h: "<path>.tmp", fsynced, renamed on
// Close()), so a reader sees a whole file or none, even after a crash; `env.fs` is the file
// system it goes through (tests inject failing ones). Thread-safety: none (one writer per
// thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/env.h"
#include "base/status.h"
#include "worker/data/column_block.h"
#include "worker/data/mtb_format.h"

namespace mtps {

class MtbWriter {
 public:
  static constexpr int64_t kDefaultRowGroupRows = 16384;

  static StatusOr<std::unique_ptr<MtbWriter>> Create(const std::string& path, const MtbSchema& schema,
                                                     int64_t row_group_rows = kDefaultRowGroupRows,
                                                     const Env& env = Env());
  ~MtbWriter();  // an unclosed writer removes its temporary file
  MtbWriter(const MtbWriter&) = delete;
  MtbWriter& operator=(const MtbWriter&) = delete;

  // Appends every record of `records`, whose columns must follow the schema.
  Status Append(const ColumnView& records);
  Status Close();

  int64_t rows_written() const { return total_rows_; }

 private:
  struct GroupIndex {
    uint64_t offset;
    uint64_t rows;
    uint64_t payload_bytes;
  };
  MtbWriter(std::string path, const MtbSchema& schema, int64_t row_group_rows, AtomicFileWriter file);
  Status WriteHeader();
  Status FlushGroup();
  Status Write(const void* data, size_t bytes);
  Status WritePadding();

  std::string path_;
  MtbSchema schema_;
  int64_t row_group_rows_;
  AtomicFileWriter file_;  // not committed when destroyed: the temporary goes
  uint64_t offset_ = 0;
  ColumnBlock pending_;
  std::vector<char> payload_;
  std::vector<GroupIndex> groups_;
  int64_t total_rows_ = 0;
  bool closed_ = false;
};

}  // namespace mtps
