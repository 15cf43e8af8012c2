// MtbWriter: serialises the schema, fills one row group's payload buffer, checksums it
// and writes it; Close() writes the footer index and trailer and commits the file.
#include "worker/data/mtb_writer.h"

#include <algorithm>
#include <utility>

#include "base/hash.h"

namespace mtps {
namespace {

void PutU32(std::vector<char>* out, uint32_t v) {
  const char* p = reinterpret_cast<const char*>(&v);
  out->insert(out->end(), p, p + 4);
}
void PutU64(std::vector<char>* out, uint64_t v) {
  const char* p = reinterpret_cast<const char*>(&v);
  out->insert(out->end(), p, p + 8);
}
void PutString(std::vector<char>* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->insert(out->end(), s.begin(), s.end());
}
template <typename T>
void PutArray(std::vector<char>* out, const T* data, size_t n) {
  const char* p = reinterpret_cast<const char*>(data);
  out->insert(out->end(), p, p + n * sizeof(T));
  out->resize(MtbPad8(out->size()), '\0');
}

}  // namespace

MtbWriter::MtbWriter(std::string path, const MtbSchema& schema, int64_t row_group_rows,
                     AtomicFileWriter file)
    : path_(std::move(path)),
      schema_(schema),
      row_group_rows_(row_group_rows),
      file_(std::move(file)),
      pending_(static_cast<int>(schema.labels.size()), static_cast<int>(schema.dense.size()),
               static_cast<int>(schema.sparse.size())) {}

MtbWriter::~MtbWriter() = default;

StatusOr<std::unique_ptr<MtbWriter>> MtbWriter::Create(const std::string& path, const MtbSchema& schema,
                                                       int64_t row_group_rows, const Env& env) {
  if (row_group_rows <= 0 || row_group_rows > (int64_t{1} << 30)) {
    return InvalidArgument("row_group_rows must be in [1, 2^30], got " + std::to_string(row_group_rows));
  }
  MTPS_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::Open(*env.fs, path));
  std::unique_ptr<MtbWriter> w(new MtbWriter(path, schema, row_group_rows, std::move(file)));
  MTPS_RETURN_IF_ERROR(w->WriteHeader());
  return w;
}

Status MtbWriter::Write(const void* data, size_t bytes) {
  MTPS_RETURN_IF_ERROR(
      file_.Append(data, bytes).WithContext(path_ + ": write at byte " + std::to_string(offset_)));
  offset_ += bytes;
  return Status::OK();
}

Status MtbWriter::WriteHeader() {
  std::vector<char> schema;
  PutU32(&schema, static_cast<uint32_t>(schema_.labels.size()));
  PutU32(&schema, static_cast<uint32_t>(schema_.dense.size()));
  PutU32(&schema, static_cast<uint32_t>(schema_.sparse.size()));
  for (const std::string& s : schema_.labels) PutString(&schema, s);
  for (const std::string& s : schema_.dense) PutString(&schema, s);
  for (const MtbSchema::Sparse& s : schema_.sparse) {
    PutString(&schema, s.name);
    PutString(&schema, s.table);
  }
  std::vector<char> header(kMtbMagic, kMtbMagic + 8);
  PutU32(&header, kMtbVersion);
  PutU32(&header, static_cast<uint32_t>(schema.size()));
  PutU64(&header, Xxh64(schema.data(), schema.size()));
  header.insert(header.end(), schema.begin(), schema.end());
  header.resize(MtbPad8(header.size()), '\0');
  return Write(header.data(), header.size());
}

Status MtbWriter::Append(const ColumnView& records) {
  if (closed_) return FailedPrecondition(path_ + ": Append after Close");
  if (records.labels.column.size() != schema_.labels.size() ||
      records.dense.column.size() != schema_.dense.size() || records.sparse.size() != schema_.sparse.size()) {
    return InvalidArgument(path_ + ": records have " + std::to_string(records.labels.column.size()) + "/" +
                           std::to_string(records.dense.column.size()) + "/" +
                           std::to_string(records.sparse.size()) + " label/dense/sparse columns, schema has " +
                           std::to_string(schema_.labels.size()) + "/" + std::to_string(schema_.dense.size()) +
                           "/" + std::to_string(schema_.sparse.size()));
  }
  int64_t r = 0;
  while (r < records.rows) {
    const int64_t n = std::min(records.rows - r, row_group_rows_ - pending_.rows);
    AppendRows(records, r, r + n, &pending_);
    r += n;
    if (pending_.rows == row_group_rows_) MTPS_RETURN_IF_ERROR(FlushGroup());
  }
  return Status::OK();
}

Status MtbWriter::FlushGroup() {
  if (pending_.rows == 0) return Status::OK();
  payload_.clear();
  PutArray(&payload_, pending_.labels.data(), pending_.labels.size());
  PutArray(&payload_, pending_.dense.data(), pending_.dense.size());
  for (const ColumnBlock::Sparse& s : pending_.sparse) {
    PutArray(&payload_, s.offsets.data(), s.offsets.size());
    PutArray(&payload_, s.keys.data(), s.keys.size());
  }
  const uint64_t rows = static_cast<uint64_t>(pending_.rows);
  std::vector<char> header;
  PutU32(&header, kMtbRowGroupMagic);
  PutU32(&header, static_cast<uint32_t>(rows));
  PutU64(&header, payload_.size());
  PutU64(&header, Xxh64(payload_.data(), payload_.size(), rows));
  groups_.push_back({offset_, rows, payload_.size()});
  MTPS_RETURN_IF_ERROR(Write(header.data(), header.size()));
  MTPS_RETURN_IF_ERROR(Write(payload_.data(), payload_.size()));
  total_rows_ += pending_.rows;
  pending_.Clear();
  return Status::OK();
}

Status MtbWriter::Close() {
  if (closed_) return Status::OK();
  MTPS_RETURN_IF_ERROR(FlushGroup());
  const uint64_t footer_offset = offset_;
  std::vector<char> footer;
  PutU32(&footer, kMtbFooterMagic);
  PutU32(&footer, static_cast<uint32_t>(groups_.size()));
  for (const GroupIndex& g : groups_) {
    PutU64(&footer, g.offset);
    PutU64(&footer, g.rows);
    PutU64(&footer, g.payload_bytes);
  }
  PutU64(&footer, static_cast<uint64_t>(total_rows_));
  PutU64(&footer, Xxh64(footer.data(), footer.size()));
  PutU64(&footer, footer_offset);
  footer.insert(footer.end(), kMtbTrailerMagic, kMtbTrailerMagic + 8);
  MTPS_RETURN_IF_ERROR(Write(footer.data(), footer.size()));
  MTPS_RETURN_IF_ERROR(file_.Commit());
  closed_ = true;
  return Status::OK();
}

}  // namespace mtps
