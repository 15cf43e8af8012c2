// CsvReader and SplitCsvRecord: the RFC 4180 state machine and the mapping of one CSV
// record's cells to labels, dense floats and sparse keys.
#include "worker/data/csv_reader.h"

#include <glog/logging.h>

#include <charconv>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <map>

namespace mtps {
namespace {

constexpr size_t kInitialBuffer = 1 << 20;
constexpr int kLoggedBadRecords = 5;

// A finite float, the whole cell; a leading '+' is allowed (from_chars refuses it).
bool ParseFloat(std::string_view s, float* out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(*out);
}

// The value as a message shows it: quoted, cut at 40 bytes, control bytes as \xNN.
std::string Quoted(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (char c : s.substr(0, kMax)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

// An id is unparsable when it has surrounding blanks or control characters (a line end or
// tab is allowed, as only a quoted cell can hold one): such values come from a broken
// export, and hashing them would silently make new keys. The NUL byte is refused always,
// which keeps every field's missing key out of reach of raw values.
const char* BadIdReason(std::string_view v) {
  if (v.empty()) return "empty value in a multi-valued list";
  if (v.front() == ' ' || v.back() == ' ' || v.front() == '\t' || v.back() == '\t') {
    return "leading or trailing blank";
  }
  for (char c : v) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\r' && c != '\t') || u == 0x7f) return "control character";
  }
  return nullptr;
}

std::string DelimiterName(char c) {
  switch (c) {
    case '\t': return "tab";
    case ',': return "','";
    case ';': return "';'";
    case ' ': return "space";
  }
  return "'" + std::string(1, c) + "'";
}

}  // namespace

std::string BinaryLabelError(const FeatureMap::Label& label, float value) {
  char text[48];
  std::snprintf(text, sizeof(text), "%g", value);
  return "label '" + label.column + "' of bce task '" + label.task + "' must be 0 or 1, got " + text;
}

StatusOr<size_t> SplitCsvRecord(const char* text, size_t size, bool at_eof,
                                std::vector<std::string_view>* cells, char* scratch, int* lines,
                                char delimiter) {
  cells->clear();
  *lines = 0;
  size_t pos = 0;
  size_t out = 0;  // bytes used in scratch
  while (true) {
    std::string_view cell;
    if (pos < size && text[pos] == '"') {
      ++pos;
      const size_t start = out;
      while (true) {
        if (pos >= size) {
          if (!at_eof) return size_t{0};
          return InvalidArgument("unterminated quoted field");
        }
        const char c = text[pos];
        if (c == '"') {
          if (pos + 1 >= size && !at_eof) return size_t{0};
          if (pos + 1 < size && text[pos + 1] == '"') {
            scratch[out++] = '"';
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        if (c == '\n') ++*lines;
        scratch[out++] = c;
        ++pos;
      }
      cell = std::string_view(scratch + start, out - start);
      if (pos < size && text[pos] != delimiter && text[pos] != '\n' && text[pos] != '\r') {
        return InvalidArgument("unexpected character after a closing quote");
      }
    } else {
      const size_t start = pos;
      while (pos < size) {
        const char c = text[pos];
        if (c == delimiter || c == '\n' || c == '\r') break;
        if (c == '"') return InvalidArgument("quote inside an unquoted field");
        ++pos;
      }
      cell = std::string_view(text + start, pos - start);
    }
    // `pos` is at a separator, a line end or the end of the input.
    if (pos >= size) {
      if (!at_eof) return size_t{0};
      cells->push_back(cell);
      return pos;
    }
    const char c = text[pos];
    cells->push_back(cell);
    if (c == delimiter) {
      ++pos;
      continue;
    }
    if (c == '\n') {
      ++*lines;
      return pos + 1;
    }
    // '\r'
    if (pos + 1 >= size) {
      if (!at_eof) return size_t{0};
      ++*lines;
      return pos + 1;
    }
    if (text[pos + 1] != '\n') return InvalidArgument("carriage return without a line feed");
    ++*lines;
    return pos + 2;
  }
}

CsvReader::CsvReader(std::string path, const FeatureMap& map, DataSpec::BadRecordPolicy policy,
                     char delimiter, FILE* file)
    : path_(std::move(path)),
      map_(map),
      policy_(policy),
      delimiter_(delimiter),
      file_(file),
      buffer_(kInitialBuffer) {}

CsvReader::~CsvReader() {
  if (file_ != nullptr) std::fclose(file_);
}

StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path, const FeatureMap& map,
                                                     DataSpec::BadRecordPolicy policy, char delimiter) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return NotFound(path + ": cannot open: " + std::strerror(errno));
  std::unique_ptr<CsvReader> reader(new CsvReader(path, map, policy, delimiter, f));
  MTPS_RETURN_IF_ERROR(reader->ReadHeader());
  return reader;
}

std::string CsvReader::Where() const { return path_ + ":" + std::to_string(line_); }

Status CsvReader::Seek(uint64_t offset, int64_t line) {
  if (offset >= buffer_offset_ && offset <= buffer_offset_ + end_) {  // already buffered
    begin_ = static_cast<size_t>(offset - buffer_offset_);
    line_ = line;
    return Status::OK();
  }
  if (std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0) {
    return Internal(path_ + ": cannot seek to byte " + std::to_string(offset) + ": " + std::strerror(errno));
  }
  eof_ = false;
  begin_ = end_ = 0;
  buffer_offset_ = offset;
  line_ = line;
  return Status::OK();
}

bool CsvReader::Refill() {
  if (eof_) return false;
  if (begin_ > 0) {
    buffer_offset_ += begin_;
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // a record longer than the buffer
  const size_t n = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
  end_ += n;
  bytes_read_ += static_cast<int64_t>(n);
  if (n == 0) eof_ = true;
  return n > 0;
}

Status CsvReader::ReadHeader() {
  int lines = 0;
  size_t header_bytes = 0;
  while (true) {
    if (scratch_.size() < end_ - begin_) scratch_.resize(buffer_.size());
    StatusOr<size_t> used = end_ > begin_
        ? SplitCsvRecord(buffer_.data() + begin_, end_ - begin_, eof_, &cells_, scratch_.data(), &lines, delimiter_)
        : StatusOr<size_t>(size_t{0});
    if (!used.ok()) return used.status().WithContext(path_ + ":1: header");
    if (*used > 0) {
      header_bytes = *used;
      break;
    }
    if (!Refill() && end_ == begin_) return InvalidArgument(path_ + ": empty file, no header");
  }
  const std::string header_text(buffer_.data() + begin_, header_bytes);
  begin_ += header_bytes;
  line_ += lines;
  std::map<std::string, int, std::less<>> index;
  for (size_t i = 0; i < cells_.size(); ++i) {
    if (!index.emplace(std::string(cells_[i]), static_cast<int>(i)).second) {
      return InvalidArgument(path_ + ":1: header names column '" + std::string(cells_[i]) + "' twice");
    }
  }
  num_columns_ = cells_.size();
  auto find = [&](const std::string& column, const std::string& what, std::vector<int>* out) -> Status {
    auto it = index.find(column);
    if (it == index.end()) {
      return InvalidArgument(path_ + ": the job spec's " + what + " needs column '" + column +
                             "', which the file's header lacks; " + HeaderHint(header_text));
    }
    out->push_back(it->second);
    return Status::OK();
  };
  for (int t = 0; t < map_.num_tasks(); ++t) {
    MTPS_RETURN_IF_ERROR(find(map_.label(t).column, "task '" + map_.label(t).task + "'", &label_column_));
  }
  for (int d = 0; d < map_.num_dense(); ++d) {
    MTPS_RETURN_IF_ERROR(find(map_.dense(d).column, "dense field '" + map_.dense(d).name + "'", &dense_column_));
  }
  for (int f = 0; f < map_.num_sparse(); ++f) {
    MTPS_RETURN_IF_ERROR(find(map_.sparse(f).column, "sparse field '" + map_.sparse(f).name + "'", &sparse_column_));
  }
  data_offset_ = buffer_offset_ + begin_;
  data_line_ = line_;
  return Status::OK();
}

// What the header looked like to this reader, and the likely fix when another delimiter
// splits it better (a TSV file read as CSV is one long column).
std::string CsvReader::HeaderHint(std::string_view header) const {
  while (!header.empty() && (header.back() == '\n' || header.back() == '\r')) header.remove_suffix(1);
  std::string hint = "the header " + Quoted(header) + " split at " + DelimiterName(delimiter_) +
                     " (data.csv_delimiter) gives " + std::to_string(num_columns_) + " column" +
                     (num_columns_ == 1 ? "" : "s");
  for (char other : {'\t', ',', ';'}) {
    if (other == delimiter_) continue;
    const size_t n = static_cast<size_t>(std::count(header.begin(), header.end(), other));
    if (n + 1 > num_columns_) {
      hint += "; it holds " + std::to_string(n) + " " + DelimiterName(other) + ": set data.csv_delimiter to " +
              (other == '\t' ? std::string("\"\\t\"") : "'" + std::string(1, other) + "'");
      break;
    }
  }
  return hint;
}

Status CsvReader::Rewind() { return Seek(data_offset_, data_line_); }

StatusOr<int64_t> CsvReader::Read(int64_t max_rows, ColumnBlock* block, int64_t max_records) {
  int64_t appended = 0;
  int64_t consumed = 0;  // good and bad records
  while (appended < max_rows && (max_records < 0 || consumed < max_records)) {
    if (begin_ == end_ && !Refill()) break;
    if (scratch_.size() < end_ - begin_) scratch_.resize(buffer_.size());
    int lines = 0;
    StatusOr<size_t> used =
        SplitCsvRecord(buffer_.data() + begin_, end_ - begin_, eof_, &cells_, scratch_.data(), &lines, delimiter_);
    Status bad;
    if (used.ok()) {
      if (*used == 0) {
        Refill();
        continue;
      }
      ++consumed;
      bad = block == nullptr ? Status::OK() : AppendRecord(block);
      begin_ += *used;
      if (bad.ok()) {
        line_ += lines;
        ++appended;
        continue;
      }
      bad = Status(bad.code(), Where() + ": " + bad.message());
      line_ += lines;
    } else {
      ++consumed;
      bad = Status(used.status().code(), Where() + ": " + used.status().message());
      // Resynchronise at the next line end.
      while (true) {
        const void* nl = std::memchr(buffer_.data() + begin_, '\n', end_ - begin_);
        if (nl != nullptr) {
          begin_ = static_cast<const char*>(nl) - buffer_.data() + 1;
          ++line_;
          break;
        }
        begin_ = end_;
        if (!Refill()) break;
      }
      if (block == nullptr) {  // counting records: the reading pass reports this one
        ++appended;
        continue;
      }
    }
    if (policy_ == DataSpec::BadRecordPolicy::kStop) return bad;
    if (bad_records_ == 0) first_bad_record_ = bad.message();
    if (bad_records_ < kLoggedBadRecords) LOG(WARNING) << "skipping bad record: " << bad.message();
    ++bad_records_;
  }
  return appended;
}

StatusOr<int64_t> CsvReader::Skip(int64_t max_records) { return Read(max_records, nullptr, max_records); }

Status CsvReader::ParseSparse(int field, std::string_view cell, ColumnBlock::Sparse* out) {
  const FeatureMap::Sparse& f = map_.sparse(field);
  if (cell.empty() && f.sequence) {
    // No history yet: an empty sequence, not the missing key.
  } else if (cell.empty()) {
    if (f.missing == MissingPolicy::kError) {
      return InvalidArgument("sparse field '" + f.name + "': missing value");
    }
    out->keys.push_back(f.missing_key);
  } else if (!f.multi_valued) {
    if (const char* why = BadIdReason(cell)) {
      return InvalidArgument("sparse field '" + f.name + "': unparsable id " + Quoted(cell) + ": " + why);
    }
    out->keys.push_back(map_.Key(field, cell));
  } else {
    const size_t first = out->keys.size();
    while (true) {
      const size_t bar = cell.find('|');
      std::string_view v = cell.substr(0, bar);
      if (const char* why = BadIdReason(v)) {
        out->keys.resize(first);
        return InvalidArgument("sparse field '" + f.name + "': unparsable id " + Quoted(v) + " in " +
                               Quoted(cell) + ": " + why);
      }
      out->keys.push_back(map_.Key(field, v));
      if (bar == std::string_view::npos) break;
      cell.remove_prefix(bar + 1);
    }
    // A sequence keeps its most recent values, which come last.
    const size_t count = out->keys.size() - first;
    if (f.max_length > 0 && count > static_cast<size_t>(f.max_length)) {
      out->keys.erase(out->keys.begin() + static_cast<long>(first),
                      out->keys.end() - f.max_length);
    }
  }
  out->offsets.push_back(static_cast<uint32_t>(out->keys.size()));
  return Status::OK();
}

Status CsvReader::AppendRecord(ColumnBlock* block) {
  if (cells_.size() != num_columns_) {
    return InvalidArgument("wrong number of columns: expected " + std::to_string(num_columns_) +
                           ", got " + std::to_string(cells_.size()));
  }
  const size_t labels_size = block->labels.size();
  const size_t dense_size = block->dense.size();
  Status status;
  for (int t = 0; t < map_.num_tasks() && status.ok(); ++t) {
    std::string_view cell = cells_[label_column_[t]];
    float v = 0.0f;
    if (!ParseFloat(cell, &v)) {
      status = InvalidArgument("label '" + map_.label(t).column + "' of task '" + map_.label(t).task +
                               "' is not a finite number: " + Quoted(cell));
    } else if (map_.label(t).binary && v != 0.0f && v != 1.0f) {
      status = InvalidArgument(BinaryLabelError(map_.label(t), v));
    }
    block->labels.push_back(v);
  }
  for (int d = 0; d < map_.num_dense() && status.ok(); ++d) {
    std::string_view cell = cells_[dense_column_[d]];
    const FeatureMap::Dense& f = map_.dense(d);
    float v = f.default_value;
    if (cell.empty()) {
      if (f.missing == MissingPolicy::kError) status = InvalidArgument("dense field '" + f.name + "': missing value");
    } else if (!ParseFloat(cell, &v)) {
      status = InvalidArgument("dense field '" + f.name + "': bad float " + Quoted(cell));
    }
    block->dense.push_back(v);
  }
  int parsed_fields = 0;
  for (int f = 0; f < map_.num_sparse() && status.ok(); ++f) {
    status = ParseSparse(f, cells_[sparse_column_[f]], &block->sparse[f]);
    if (status.ok()) ++parsed_fields;
  }
  if (!status.ok()) {
    block->labels.resize(labels_size);
    block->dense.resize(dense_size);
    for (int f = 0; f < map_.num_sparse(); ++f) {
      ColumnBlock::Sparse& s = block->sparse[f];
      if (f < parsed_fields) s.offsets.pop_back();
      s.keys.resize(s.offsets.back());
    }
    return status;
  }
  ++block->rows;
  return Status::OK();
}

}  // namespace mtps
