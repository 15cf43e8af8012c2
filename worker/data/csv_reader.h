// CsvReader: reads records of a CSV file (RFC 4180: a header line, quoted fields with ""
// escapes and embedded newlines, '|'-separated values in multi-valued sparse cells) into
// ColumnBlocks, through a FeatureMap.
//
//   MTPS_ASSIGN_OR_RETURN(auto reader, CsvReader::Open("day1.csv", map, BadRecordPolicy::kSkip));
//   ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
//   MTPS_ASSIGN_OR_RETURN(int64_t n, reader->Read(4096, &block));   // 0 at end of file
//   LOG(INFO) << reader->bad_records() << " bad records skipped";
//
// Open() checks the header: a column the spec names but the file lacks is refused before a
// record is read, naming the delimiter used and what the header looked like split at it. A bad record (wrong number of columns, a label that is not a finite
// number or a bce label other than 0 and 1, a bad float, an unparsable id, a quote error,
// a missing value under MissingPolicy::kError) is reported as "file:line: reason"; under kSkip it is counted and
// skipped, under kStop Read() returns the error. Seek() jumps to a record boundary that an
// earlier pass noted (offset(), line()), which is how shuffled reading visits chunks.
// Thread-safety: none (one reader per thread).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/data/column_block.h"
#include "worker/data/feature_map.h"

namespace mtps {

// Splits one CSV record starting at `text` into cells (RFC 4180). Returns the bytes the
// record spans including its line end, 0 when the record is incomplete and more input may
// follow (`at_eof` false), or an error. Unescaped quoted cells are written to `scratch`,
// which must hold at least `size` bytes and outlive `cells`. `lines` gets the number of
// line ends the record spans.
StatusOr<size_t> SplitCsvRecord(const char* text, size_t size, bool at_eof,
                                std::vector<std::string_view>* cells, char* scratch, int* lines,
                                char delimiter = ',');

// "label 'click' of bce task 'ctr' must be 0 or 1, got 2": one message for CSV and .mtb.
std::string BinaryLabelError(const FeatureMap::Label& label, float value);

class CsvReader {
 public:
  static StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path, const FeatureMap& map,
                                                   DataSpec::BadRecordPolicy policy, char delimiter = ',');
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Appends up to `max_rows` good records to `block`; returns how many (0: end of file).
  // With max_records >= 0, stops after that many records, good or bad.
  StatusOr<int64_t> Read(int64_t max_rows, ColumnBlock* block, int64_t max_records = -1);
  // Passes over up to `max_records` records, good or bad, without parsing their cells;
  // returns how many (0: end of file). Never fails on a bad record (Read() reports it).
  StatusOr<int64_t> Skip(int64_t max_records);
  // Continues at byte `offset`, the start of a record on line `line` (from offset(), line()).
  Status Seek(uint64_t offset, int64_t line);
  // Back to the first record after the header.
  Status Rewind();
  uint64_t offset() const { return buffer_offset_ + begin_; }  // of the next record
  int64_t line() const { return line_; }

  const std::string& path() const { return path_; }
  int64_t bad_records() const { return bad_records_; }
  const std::string& first_bad_record() const { return first_bad_record_; }
  int64_t bytes_read() const { return bytes_read_; }

 private:
  CsvReader(std::string path, const FeatureMap& map, DataSpec::BadRecordPolicy policy, char delimiter,
            FILE* file);
  Status ReadHeader();
  std::string HeaderHint(std::string_view header) const;
  // Refills the buffer, keeping the unconsumed tail; false at end of file.
  bool Refill();
  // Appends one record's values to `block`; on error the block is unchanged.
  Status AppendRecord(ColumnBlock* block);
  Status ParseSparse(int field, std::string_view cell, ColumnBlock::Sparse* out);
  std::string Where() const;

  std::string path_;
  const FeatureMap& map_;
  DataSpec::BadRecordPolicy policy_;
  char delimiter_;
  FILE* file_;
  bool eof_ = false;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // end of valid bytes
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  uint64_t data_offset_ = 0;    // of the first record after the header
  int64_t data_line_ = 1;
  std::vector<char> scratch_;
  std::vector<std::string_view> cells_;
  int64_t line_ = 1;  // line where the current record starts
  size_t num_columns_ = 0;
  std::vector<int> label_column_, dense_column_, sparse_column_;
  int64_t bad_records_ = 0;
  std::string first_bad_record_;
  int64_t bytes_read_ = 0;
};

}  // namespace mtps
