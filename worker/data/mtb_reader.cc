// MtbReader: maps a .mtb file, validates its header and footer, and checks each row group
// (checksum, then layout) before handing out views of its columns.
#include "worker/data/mtb_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "protocol/checksum_check.h"
#include "base/hash.h"

namespace mtps {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Bounds-checked little-endian reads over a byte range.
class Cursor {
 public:
  Cursor(const unsigned char* data, uint64_t size) : data_(data), size_(size) {}
  bool U32(uint32_t* v) { return Copy(v, 4); }
  bool U64(uint64_t* v) { return Copy(v, 8); }
  bool String(std::string* s) {
    uint32_t n;
    if (!U32(&n) || n > size_ - pos_) return false;
    s->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return true;
  }
  uint64_t pos() const { return pos_; }

 private:
  bool Copy(void* v, uint64_t n) {
    if (n > size_ - pos_) return false;
    std::memcpy(v, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  const unsigned char* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Maps the pages of a row group in one call instead of one fault per page (Linux 5.14+;
// on older kernels the call fails and the pages fault in as they are read).
void PrefaultRange(const unsigned char* begin, uint64_t bytes) {
#ifdef MADV_POPULATE_READ
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(begin) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(begin) + bytes;
  madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_READ);
#else
  (void)begin;
  (void)bytes;
#endif
}

}  // namespace

MtbReader::MtbReader(std::string path, const unsigned char* data, uint64_t size)
    : path_(std::move(path)), data_(data), size_(size) {}

MtbReader::~MtbReader() {
  if (data_ != nullptr && size_ > 0) munmap(const_cast<unsigned char*>(data_), size_);
}

StatusOr<std::unique_ptr<MtbReader>> MtbReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return NotFound(path + ": cannot stat: " + std::strerror(err));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Internal(path + ": mmap of " + std::to_string(size) + " bytes failed: " + std::strerror(err));
    }
  }
  ::close(fd);  // the mapping keeps the file
  std::unique_ptr<MtbReader> reader(new MtbReader(path, static_cast<const unsigned char*>(map), size));
  MTPS_RETURN_IF_ERROR(reader->ParseHeader());
  MTPS_RETURN_IF_ERROR(reader->ParseFooter());
  return reader;
}

Status MtbReader::ParseHeader() {
  if (size_ < 24 || std::memcmp(data_, kMtbMagic, 8) != 0) {
    return InvalidArgument(path_ + ": not a .mtb file (bad magic or shorter than a header)");
  }
  Cursor c(data_ + 8, size_ - 8);
  uint32_t version, schema_bytes;
  uint64_t checksum;
  c.U32(&version);
  c.U32(&schema_bytes);
  c.U64(&checksum);
  if (version != kMtbVersion) {
    return VersionMismatch(path_ + ": .mtb format version " + std::to_string(version) +
                           ", this reader understands " + std::to_string(kMtbVersion));
  }
  if (schema_bytes > size_ - 24) return DataLoss(path_ + ": truncated inside the file header");
  const unsigned char* schema = data_ + 24;
  if (!StoredChecksumMatches(checksum, Xxh64(schema, schema_bytes))) {
    return DataLoss(path_ + ": file header (schema) checksum mismatch: stored " + Hex(checksum) +
                    ", computed " + Hex(Xxh64(schema, schema_bytes)));
  }
  Cursor s(schema, schema_bytes);
  uint32_t tasks = 0, dense = 0, sparse = 0;
  bool ok = s.U32(&tasks) && s.U32(&dense) && s.U32(&sparse) && tasks <= schema_bytes &&
            dense <= schema_bytes && sparse <= schema_bytes;
  for (uint32_t i = 0; ok && i < tasks; ++i) ok = s.String(&schema_.labels.emplace_back());
  for (uint32_t i = 0; ok && i < dense; ++i) ok = s.String(&schema_.dense.emplace_back());
  for (uint32_t i = 0; ok && i < sparse; ++i) {
    MtbSchema::Sparse& f = schema_.sparse.emplace_back();
    ok = s.String(&f.name) && s.String(&f.table);
  }
  if (!ok) return DataLoss(path_ + ": malformed schema in the file header");
  first_group_offset_ = MtbPad8(24 + schema_bytes);
  return Status::OK();
}

Status MtbReader::ParseFooter() {
  if (size_ < first_group_offset_ + kMtbTrailerBytes ||
      std::memcmp(data_ + size_ - 8, kMtbTrailerMagic, 8) != 0) {
    return DiagnoseTail("no trailer at the end of the file");
  }
  uint64_t footer_offset;
  std::memcpy(&footer_offset, data_ + size_ - kMtbTrailerBytes, 8);
  if (footer_offset < first_group_offset_ || footer_offset > size_ - kMtbTrailerBytes - 24) {
    return DiagnoseTail("footer offset " + std::to_string(footer_offset) + " out of range");
  }
  const uint64_t footer_bytes = size_ - kMtbTrailerBytes - footer_offset;
  Cursor c(data_ + footer_offset, footer_bytes);
  uint32_t magic = 0, groups = 0;
  c.U32(&magic);
  c.U32(&groups);
  if (magic != kMtbFooterMagic || uint64_t{groups} * 24 + 24 != footer_bytes) {
    return DiagnoseTail("malformed footer at byte " + std::to_string(footer_offset));
  }
  uint64_t stored;
  std::memcpy(&stored, data_ + size_ - kMtbTrailerBytes - 8, 8);
  const uint64_t computed = Xxh64(data_ + footer_offset, footer_bytes - 8);
  if (!StoredChecksumMatches(stored, computed)) {
    return DataLoss(path_ + ": footer checksum mismatch: stored " + Hex(stored) + ", computed " + Hex(computed));
  }
  uint64_t expected_offset = first_group_offset_;
  uint64_t total = 0;
  for (uint32_t g = 0; g < groups; ++g) {
    Group gr;
    c.U64(&gr.offset);
    c.U64(&gr.rows);
    c.U64(&gr.payload_bytes);
    if (gr.offset != expected_offset || gr.payload_bytes > footer_offset - gr.offset ||
        gr.rows > (uint64_t{1} << 30)) {
      return DataLoss(path_ + ": footer entry of row group " + std::to_string(g) + " is inconsistent");
    }
    expected_offset = gr.offset + kMtbRowGroupHeaderBytes + gr.payload_bytes;
    total += gr.rows;
    groups_.push_back(gr);
  }
  uint64_t stored_total = 0;
  c.U64(&stored_total);
  if (expected_offset != footer_offset || stored_total != total) {
    return DataLoss(path_ + ": footer index does not cover the file (row groups end at byte " +
                    std::to_string(expected_offset) + ", footer starts at " + std::to_string(footer_offset) + ")");
  }
  total_rows_ = static_cast<int64_t>(total);
  return Status::OK();
}

Status MtbReader::DiagnoseTail(const std::string& why) const {
  uint64_t offset = first_group_offset_;
  for (int g = 0;; ++g) {
    if (offset + kMtbRowGroupHeaderBytes > size_) {
      return DataLoss(path_ + ": truncated (" + why + "): file ends at byte " + std::to_string(size_) +
                      " inside row group " + std::to_string(g) + " (starting at byte " + std::to_string(offset) +
                      ") or its footer; " + std::to_string(g) + " whole row groups precede it");
    }
    uint32_t magic;
    uint64_t payload;
    std::memcpy(&magic, data_ + offset, 4);
    std::memcpy(&payload, data_ + offset + 8, 8);
    if (magic != kMtbRowGroupMagic) {
      return DataLoss(path_ + ": truncated or corrupt (" + why + "): no row group " + std::to_string(g) +
                      " header at byte " + std::to_string(offset) + "; " + std::to_string(g) +
                      " whole row groups precede it");
    }
    if (payload > size_ - offset - kMtbRowGroupHeaderBytes) {
      return DataLoss(path_ + ": truncated (" + why + "): row group " + std::to_string(g) + " at byte " +
                      std::to_string(offset) + " needs " + std::to_string(payload + kMtbRowGroupHeaderBytes) +
                      " bytes, the file has " + std::to_string(size_ - offset) + " left");
    }
    offset += kMtbRowGroupHeaderBytes + payload;
  }
}

std::string MtbReader::GroupName(int g) const {
  return path_ + ": row group " + std::to_string(g) + " of " + std::to_string(groups_.size()) + " (byte " +
         std::to_string(groups_[g].offset) + ")";
}

StatusOr<MtbBinding> MtbReader::Bind(const FeatureMap& map) const {
  MtbBinding b;
  auto find = [&](const std::vector<std::string>& names, const std::string& name, const std::string& what,
                  std::vector<int>* out) -> Status {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) {
        out->push_back(static_cast<int>(i));
        return Status::OK();
      }
    }
    return InvalidArgument(path_ + ": the job spec's " + what + " needs column '" + name +
                           "', which the file lacks");
  };
  for (int t = 0; t < map.num_tasks(); ++t) {
    MTPS_RETURN_IF_ERROR(find(schema_.labels, map.label(t).column, "task '" + map.label(t).task + "'", &b.label_column));
  }
  for (int d = 0; d < map.num_dense(); ++d) {
    MTPS_RETURN_IF_ERROR(find(schema_.dense, map.dense(d).name, "dense field", &b.dense_column));
  }
  std::vector<std::string> sparse_names;
  for (const MtbSchema::Sparse& s : schema_.sparse) sparse_names.push_back(s.name);
  for (int f = 0; f < map.num_sparse(); ++f) {
    MTPS_RETURN_IF_ERROR(find(sparse_names, map.sparse(f).name, "sparse field", &b.sparse_column));
  }
  return b;
}

Status MtbReader::ReadRowGroup(int g, const MtbBinding& binding, ColumnView* view) const {
  if (g < 0 || g >= num_row_groups()) {
    return OutOfRange(path_ + ": row group " + std::to_string(g) + " of " + std::to_string(groups_.size()));
  }
  const Group& gr = groups_[g];
  const unsigned char* header = data_ + gr.offset;
  uint32_t magic, rows;
  uint64_t payload_bytes, checksum;
  std::memcpy(&magic, header, 4);
  std::memcpy(&rows, header + 4, 4);
  std::memcpy(&payload_bytes, header + 8, 8);
  std::memcpy(&checksum, header + 16, 8);
  if (magic != kMtbRowGroupMagic || rows != gr.rows || payload_bytes != gr.payload_bytes) {
    return DataLoss(GroupName(g) + ": header corrupt (rows " + std::to_string(rows) + ", payload " +
                    std::to_string(payload_bytes) + " bytes; the footer says " + std::to_string(gr.rows) + " and " +
                    std::to_string(gr.payload_bytes) + ")");
  }
  const unsigned char* payload = header + kMtbRowGroupHeaderBytes;
  PrefaultRange(header, kMtbRowGroupHeaderBytes + payload_bytes);
  const uint64_t computed = Xxh64(payload, payload_bytes, rows);
  if (!StoredChecksumMatches(checksum, computed)) {
    return DataLoss(GroupName(g) + ": checksum mismatch: stored " + Hex(checksum) + ", computed " + Hex(computed));
  }
  // The checksum proves the bytes are the writer's; the layout checks below keep a buggy
  // writer from sending a reader out of bounds.
  const uint64_t n = rows;
  const uint64_t tasks = schema_.labels.size(), dense = schema_.dense.size();
  uint64_t pos = 0;
  auto layout_error = [&](const std::string& what) {
    return DataLoss(GroupName(g) + ": bad layout: " + what);
  };
  const uint64_t labels_at = pos;
  pos += MtbPad8(n * tasks * 4);
  const uint64_t dense_at = pos;
  pos += MtbPad8(n * dense * 4);
  if (pos > payload_bytes) return layout_error("dense columns pass the payload end");
  view->rows = static_cast<int64_t>(n);
  auto bind_strided = [&](uint64_t at, uint64_t stored, const std::vector<int>& cols, ColumnView::Strided* s) {
    s->base = reinterpret_cast<const float*>(payload + at);
    s->stride = static_cast<int>(stored);
    s->column = cols;
    s->identity = cols.size() == stored;
    for (size_t j = 0; j < cols.size() && s->identity; ++j) s->identity = cols[j] == static_cast<int>(j);
  };
  bind_strided(labels_at, tasks, binding.label_column, &view->labels);
  bind_strided(dense_at, dense, binding.dense_column, &view->dense);
  // Sparse fields sit one after another; walk them all, keep the bound ones.
  view->sparse.resize(binding.sparse_column.size());
  for (size_t f = 0; f < schema_.sparse.size(); ++f) {
    if (pos + (n + 1) * 4 > payload_bytes) return layout_error("offsets of field " + schema_.sparse[f].name);
    const auto* offsets = reinterpret_cast<const uint32_t*>(payload + pos);
    pos += MtbPad8((n + 1) * 4);
    if (offsets[0] != 0) return layout_error("field " + schema_.sparse[f].name + " offsets do not start at 0");
    for (uint64_t r = 0; r < n; ++r) {
      if (offsets[r + 1] < offsets[r]) return layout_error("field " + schema_.sparse[f].name + " offsets decrease");
    }
    const uint64_t keys = offsets[n];
    if (pos + keys * 8 > payload_bytes) return layout_error("keys of field " + schema_.sparse[f].name);
    for (size_t j = 0; j < binding.sparse_column.size(); ++j) {
      if (binding.sparse_column[j] == static_cast<int>(f)) {
        view->sparse[j] = {offsets, reinterpret_cast<const uint64_t*>(payload + pos)};
      }
    }
    pos += keys * 8;
  }
  if (pos != payload_bytes) return layout_error("payload has " + std::to_string(payload_bytes - pos) + " extra bytes");
  return Status::OK();
}

}  // namespace mtps
