// Checkpoint files: a framed format (header, checksummed blocks, footer) shared by table
// and dense-block files, written through FileSystem to a temporary name and
// renamed, and read back completely into fresh objects before anything is swapped in.
#include "ps/checkpoint.h"

#include <bit>
#include <cstring>
#include <optional>
#include <string_view>

#include "protocol/checksum_check.h"
#include "base/atomic_file.h"
#include "base/crc32c.h"
#include "ps/key_hash.h"

namespace mtps::ps {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoints are little-endian and written with memcpy");

constexpr char kTableMagic[8] = {'M', 'T', 'P', 'S', 'T', 'A', 'B', '\0'};
constexpr char kDenseMagic[8] = {'M', 'T', 'P', 'S', 'D', 'N', 'S', '\0'};
constexpr char kIncrementMagic[8] = {'M', 'T', 'P', 'S', 'I', 'N', 'C', '\0'};
// An increment's records: a tag byte, then a row (as in a table file) or a removed key.
constexpr uint8_t kRowRecord = 1;
constexpr uint8_t kRemovedRecord = 2;
constexpr uint32_t kBlockMarker = 0x314b4c42;  // "BLK1"
constexpr uint32_t kEndMarker = 0x31444e45;    // "END1"
constexpr size_t kBlockPayloadTarget = size_t{1} << 20;
constexpr uint32_t kMaxHeaderBytes = 1 << 20;
constexpr uint32_t kMaxBlockBytes = 1u << 30;
constexpr size_t kRowMetaBytes = 8 + 4 + 4 + 4;  // key, frequency, last step, update count

// Appends plain little-endian values to a byte string.
class ByteWriter {
 public:
  template <typename T>
  void Put(T v) { out_.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
  void PutBytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void PutString(const std::string& s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote; a read past the end leaves ok() false.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  template <typename T>
  T Get() {
    T v{};
    if (in_.size() < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return v;
  }
  bool GetBytes(void* p, size_t n) {
    if (in_.size() < n) return ok_ = false;
    if (n == 0) return true;  // `p` may be null then (an empty vector's data())
    std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::string GetString() {
    const uint32_t n = Get<uint32_t>();
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
  bool ok_ = true;
};

// Writes one framed file: header, blocks of records, footer, through the one atomic write
// (base/atomic_file.h): until Finish succeeds only the temporary file exists (removed on
// failure), so a crash never leaves a partial file under the final name.
class FrameWriter {
 public:
  FrameWriter(FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}

  Status Begin(const char (&magic)[8], const std::string& fields) {
    StatusOr<AtomicFileWriter> out = AtomicFileWriter::Open(fs_, path_);
    if (!out.ok()) return Fail(out.status());
    out_.emplace(std::move(out).value());
    ByteWriter header;
    header.PutBytes(magic, 8);
    header.Put<uint32_t>(kCheckpointFormatVersion);
    header.Put<uint32_t>(static_cast<uint32_t>(fields.size()));
    header.PutBytes(fields.data(), fields.size());
    header.Put<uint32_t>(Crc32c(header.bytes().data(), header.bytes().size()));
    return Write(header.bytes().data(), header.bytes().size());
  }

  // Space for one record of `size` bytes in the current block.
  char* NewRecord(size_t size) {
    const size_t old = payload_.size();
    payload_.resize(old + size);
    ++block_rows_;
    return payload_.data() + old;
  }
  // Closes the block once it is big enough.
  Status RecordDone() {
    return payload_.size() >= kBlockPayloadTarget ? FlushBlock() : Status::OK();
  }

  StatusOr<CheckpointFileInfo> Finish() {
    MTPS_RETURN_IF_ERROR(FlushBlock());
    ByteWriter footer;
    footer.Put<uint32_t>(kEndMarker);
    footer.Put<uint32_t>(blocks_);
    footer.Put<uint64_t>(rows_);
    footer.Put<uint32_t>(Crc32c(footer.bytes().data(), footer.bytes().size()));
    MTPS_RETURN_IF_ERROR(Write(footer.bytes().data(), footer.bytes().size()));
    MTPS_RETURN_IF_ERROR(Fail(out_->Commit()));
    return CheckpointFileInfo{path_, bytes_, file_crc_};
  }

 private:
  Status Fail(const Status& s) {
    return s.ok() ? s : s.WithContext("checkpoint '" + path_ + "'");
  }
  Status Write(const void* data, size_t size) {
    file_crc_ = Crc32cExtend(static_cast<uint32_t>(file_crc_), data, size);
    bytes_ += size;
    return Fail(out_->Append(data, size));
  }
  Status FlushBlock() {
    if (block_rows_ == 0) return Status::OK();
    const uint32_t head[4] = {kBlockMarker, block_rows_, static_cast<uint32_t>(payload_.size()),
                              Crc32c(payload_.data(), payload_.size())};
    MTPS_RETURN_IF_ERROR(Write(head, sizeof(head)));
    MTPS_RETURN_IF_ERROR(Write(payload_.data(), payload_.size()));
    ++blocks_;
    rows_ += block_rows_;
    block_rows_ = 0;
    payload_.clear();
    return Status::OK();
  }

  FileSystem& fs_;
  std::string path_;
  std::optional<AtomicFileWriter> out_;  // not committed at destruction: the temporary goes
  std::string payload_;
  uint32_t block_rows_ = 0;
  uint32_t blocks_ = 0;
  uint64_t rows_ = 0;
  uint64_t bytes_ = 0;
  uint64_t file_crc_ = 0;
};

// Reads a framed file block by block, checking every checksum and the footer; each error
// names the file and, for a block, its number and byte offset.
class FrameReader {
 public:
  FrameReader(FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}

  // Opens the file and returns its header fields.
  StatusOr<std::string> Begin(const char (&magic)[8], const char* kind) {
    auto file = fs_.NewReadableFile(path_);
    if (!file.ok()) return Error(file.status());
    file_ = std::move(file).value();
    char head[16];
    MTPS_RETURN_IF_ERROR(ReadExactly(head, sizeof(head), "the header"));
    if (std::memcmp(head, magic, 8) != 0) {
      return Error(DataLoss(std::string("not a ") + kind + " checkpoint (bad magic)"));
    }
    uint32_t version, fields_size;
    std::memcpy(&version, head + 8, 4);
    std::memcpy(&fields_size, head + 12, 4);
    if (version != kCheckpointFormatVersion) {
      return Error(VersionMismatch("format version " + std::to_string(version) +
                                   ", this build reads version " +
                                   std::to_string(kCheckpointFormatVersion)));
    }
    if (fields_size > kMaxHeaderBytes) {
      return Error(DataLoss("header claims " + std::to_string(fields_size) + " bytes"));
    }
    std::string fields(fields_size, '\0');
    uint32_t stored_crc;
    MTPS_RETURN_IF_ERROR(ReadExactly(fields.data(), fields.size(), "the header"));
    MTPS_RETURN_IF_ERROR(ReadExactly(&stored_crc, 4, "the header"));
    const uint32_t crc = Crc32cExtend(Crc32c(head, sizeof(head)), fields.data(), fields.size());
    if (!StoredChecksumMatches(stored_crc, crc)) return Error(DataLoss("header checksum mismatch"));
    return fields;
  }

  // The next block's payload and record count; false once the (checked) footer is read.
  StatusOr<bool> NextBlock(std::string* payload, uint32_t* rows) {
    block_offset_ = offset_;
    uint32_t head[4];
    size_t got = 0;
    MTPS_RETURN_IF_ERROR(Error(file_->Read(head, sizeof(head), &got)));
    offset_ += got;
    if (got == 0) {
      return Error(DataLoss("truncated: the file ends after " + std::to_string(blocks_) +
                            " blocks (offset " + std::to_string(block_offset_) +
                            ") without its footer"));
    }
    if (got < sizeof(head)) return Error(BlockError("truncated inside the block header"));
    if (head[0] == kEndMarker) return ReadFooter(head);
    if (head[0] != kBlockMarker) return Error(BlockError("bad block marker"));
    if (head[2] > kMaxBlockBytes) {
      return Error(BlockError("claims " + std::to_string(head[2]) + " bytes"));
    }
    if (head[2] > file_->Size() - offset_) {  // checked before allocating for it
      return Error(BlockError("truncated: the block claims " + std::to_string(head[2]) +
                              " bytes, " + std::to_string(file_->Size() - offset_) + " remain"));
    }
    payload->resize(head[2]);
    MTPS_RETURN_IF_ERROR(ReadExactly(payload->data(), payload->size(), "a block"));
    if (!StoredChecksumMatches(head[3], Crc32c(payload->data(), payload->size()))) {
      return Error(BlockError("checksum mismatch"));
    }
    *rows = head[1];
    ++blocks_;
    rows_ += head[1];
    return true;
  }

  // An error about the block just read.
  Status BlockError(const std::string& what) const {
    return DataLoss("block " + std::to_string(blocks_) + " at offset " +
                    std::to_string(block_offset_) + ": " + what);
  }
  Status Error(const Status& s) const {
    return s.ok() ? s : s.WithContext("checkpoint '" + path_ + "'");
  }

 private:
  Status ReadExactly(void* data, size_t size, const char* what) {
    size_t got = 0;
    MTPS_RETURN_IF_ERROR(Error(file_->Read(data, size, &got)));
    offset_ += got;
    if (got < size) {
      return Error(DataLoss(std::string("truncated inside ") + what + " (block " +
                            std::to_string(blocks_) + " at offset " +
                            std::to_string(block_offset_) + "): " + std::to_string(got) +
                            " of " + std::to_string(size) + " bytes"));
    }
    return Status::OK();
  }

  StatusOr<bool> ReadFooter(const uint32_t (&head)[4]) {
    uint32_t stored_crc;
    MTPS_RETURN_IF_ERROR(ReadExactly(&stored_crc, 4, "the footer"));
    if (!StoredChecksumMatches(stored_crc, Crc32c(head, sizeof(head)))) {
      return Error(BlockError("footer checksum mismatch"));
    }
    uint64_t rows;
    std::memcpy(&rows, &head[2], 8);
    if (head[1] != blocks_ || rows != rows_) {
      return Error(DataLoss("footer promises " + std::to_string(head[1]) + " blocks and " +
                            std::to_string(rows) + " rows, the file holds " +
                            std::to_string(blocks_) + " and " + std::to_string(rows_)));
    }
    if (offset_ != file_->Size()) {
      return Error(DataLoss(std::to_string(file_->Size() - offset_) +
                            " unexpected bytes after the footer"));
    }
    return false;
  }

  FileSystem& fs_;
  std::string path_;
  std::unique_ptr<ReadableFile> file_;
  uint64_t offset_ = 0;
  uint64_t block_offset_ = 0;
  uint32_t blocks_ = 0;
  uint64_t rows_ = 0;
};

// --- Table files ---

std::string EncodeTableFields(const TableSpec& spec) {
  ByteWriter w;
  w.PutString(spec.name);
  w.Put<int32_t>(spec.dim);
  w.Put<uint32_t>(static_cast<uint32_t>(spec.optimizer.type));
  w.Put<uint32_t>(static_cast<uint32_t>(StateFloats(spec.optimizer, spec.dim)));
  w.Put<uint64_t>(spec.seed);
  w.Put<uint32_t>(static_cast<uint32_t>(spec.initializer.type));
  w.Put<float>(spec.initializer.stddev);
  w.Put<float>(spec.initializer.range);
  // Added after version 1 shipped without it: absent means fp32, so older files load.
  if (spec.precision != Precision::kFp32) w.Put<uint32_t>(static_cast<uint32_t>(spec.precision));
  return std::move(w.bytes());
}

// The file's spec must shape rows exactly as `spec` does; the error names what differs.
Status CheckTableFields(const std::string& fields, const TableSpec& spec) {
  ByteReader r(fields);
  const std::string name = r.GetString();
  const int32_t dim = r.Get<int32_t>();
  const uint32_t optimizer = r.Get<uint32_t>();
  const uint32_t state_floats = r.Get<uint32_t>();
  const uint64_t seed = r.Get<uint64_t>();
  const uint32_t init_type = r.Get<uint32_t>();
  const float stddev = r.Get<float>();
  const float range = r.Get<float>();
  uint32_t precision = static_cast<uint32_t>(Precision::kFp32);
  if (r.ok() && !r.done()) precision = r.Get<uint32_t>();
  if (!r.ok() || !r.done()) return DataLoss("malformed table header");
  auto differs = [&](const std::string& field, const std::string& file_value,
                     const std::string& table_value) {
    return FailedPrecondition("written for another table spec: " + field + " is " + file_value +
                              " in the file, " + table_value + " in table '" + spec.name + "'");
  };
  if (name != spec.name) return differs("name", "'" + name + "'", "'" + spec.name + "'");
  if (dim != spec.dim) return differs("dim", std::to_string(dim), std::to_string(spec.dim));
  if (optimizer != static_cast<uint32_t>(spec.optimizer.type)) {
    const bool known = optimizer <= static_cast<uint32_t>(OptimizerSpec::Type::kFtrl);
    return differs("optimizer",
                   known ? OptimizerTypeName(static_cast<OptimizerSpec::Type>(optimizer))
                         : std::to_string(optimizer),
                   OptimizerTypeName(spec.optimizer.type));
  }
  const uint32_t want_state = static_cast<uint32_t>(StateFloats(spec.optimizer, spec.dim));
  if (state_floats != want_state) {
    return differs("state floats per row", std::to_string(state_floats), std::to_string(want_state));
  }
  if (precision != static_cast<uint32_t>(spec.precision)) {
    const bool known = precision <= static_cast<uint32_t>(Precision::kBf16);
    return differs("precision",
                   known ? PrecisionName(static_cast<Precision>(precision)) : std::to_string(precision),
                   PrecisionName(spec.precision));
  }
  if (seed != spec.seed) return differs("seed", std::to_string(seed), std::to_string(spec.seed));
  if (init_type != static_cast<uint32_t>(spec.initializer.type) ||
      stddev != spec.initializer.stddev || range != spec.initializer.range) {
    return differs("initializer", "type " + std::to_string(init_type),
                   "type " + std::to_string(static_cast<uint32_t>(spec.initializer.type)) +
                       " (or its stddev/range differ)");
  }
  return Status::OK();
}

void EncodeRow(char* rec, uint64_t key, const char* values, const RowMeta& meta,
               size_t value_bytes) {
  std::memcpy(rec, &key, 8);
  std::memcpy(rec + 8, &meta.frequency, 4);
  std::memcpy(rec + 12, &meta.last_step, 4);
  std::memcpy(rec + 16, &meta.update_count, 4);
  std::memcpy(rec + kRowMetaBytes, values, value_bytes);
}

// Inserts the row encoded at `rec` (EncodeRow) into its part.
void InsertEncodedRow(const char* rec, std::vector<std::unique_ptr<EmbeddingTable>>& parts) {
  uint64_t key;
  RowMeta meta;
  std::memcpy(&key, rec, 8);
  std::memcpy(&meta.frequency, rec + 8, 4);
  std::memcpy(&meta.last_step, rec + 12, 4);
  std::memcpy(&meta.update_count, rec + 16, 4);
  parts[ShardOfKey(key, static_cast<uint32_t>(parts.size()))]->InsertStoredRow(
      key, rec + kRowMetaBytes, meta);
}

// Appends every row of `table` as key, frequency, last step, update count, then its
// values as stored (weights in the table's precision, fp32 state).
Status WriteRows(FrameWriter& writer, const EmbeddingTable& table) {
  const size_t value_bytes = table.layout().stored_value_bytes();
  Status status;
  table.ForEachStoredRow([&](uint64_t key, const char* values, const RowMeta& meta) {
    if (!status.ok()) return;
    EncodeRow(writer.NewRecord(kRowMetaBytes + value_bytes), key, values, meta, value_bytes);
    status = writer.RecordDone();
  });
  return status;
}

// Appends what changed in `table` since its last ResetChanges(): the removed keys first
// (a key removed and made again must end with its row), then the changed rows.
Status WriteChanges(FrameWriter& writer, const EmbeddingTable& table) {
  Status status;
  for (uint64_t key : table.RemovedKeys()) {
    char* rec = writer.NewRecord(1 + 8);
    rec[0] = static_cast<char>(kRemovedRecord);
    std::memcpy(rec + 1, &key, 8);
    MTPS_RETURN_IF_ERROR(writer.RecordDone());
  }
  const size_t value_bytes = table.layout().stored_value_bytes();
  table.ForEachChangedStoredRow([&](uint64_t key, const char* values, const RowMeta& meta) {
    if (!status.ok()) return;
    char* rec = writer.NewRecord(1 + kRowMetaBytes + value_bytes);
    rec[0] = static_cast<char>(kRowRecord);
    EncodeRow(rec + 1, key, values, meta, value_bytes);
    status = writer.RecordDone();
  });
  return status;
}

std::string EncodeIncrementFields(uint64_t checkpoint_id, uint64_t base_id, const TableSpec& spec) {
  ByteWriter w;
  w.Put<uint64_t>(checkpoint_id);
  w.Put<uint64_t>(base_id);
  w.PutBytes(EncodeTableFields(spec).data(), EncodeTableFields(spec).size());
  return std::move(w.bytes());
}

}  // namespace

std::string TableCheckpointPath(const std::string& dir, int server_rank,
                                const std::string& table_name) {
  return dir + "/server-" + std::to_string(server_rank) + ".table-" + table_name + ".ckpt";
}

std::string DenseCheckpointPath(const std::string& dir, int server_rank) {
  return dir + "/server-" + std::to_string(server_rank) + ".dense.ckpt";
}

StatusOr<CheckpointFileInfo> SaveTableParts(FileSystem& fs, const std::string& path,
                                            const std::vector<const EmbeddingTable*>& parts) {
  if (parts.empty()) return InvalidArgument("checkpoint '" + path + "': no table to save");
  const TableSpec& spec = parts[0]->spec();
  for (const EmbeddingTable* part : parts) {
    if (part->dim() != spec.dim || part->spec().optimizer.type != spec.optimizer.type ||
        part->precision() != spec.precision) {
      return InvalidArgument("checkpoint '" + path + "': the parts have different specs");
    }
  }
  FrameWriter writer(fs, path);
  MTPS_RETURN_IF_ERROR(writer.Begin(kTableMagic, EncodeTableFields(spec)));
  for (const EmbeddingTable* part : parts) MTPS_RETURN_IF_ERROR(WriteRows(writer, *part));
  return writer.Finish();
}

StatusOr<std::vector<std::unique_ptr<EmbeddingTable>>> LoadTableParts(
    FileSystem& fs, const std::string& path, const TableSpec& spec, int num_shards) {
  if (num_shards < 1) return InvalidArgument("num_shards must be >= 1");
  FrameReader reader(fs, path);
  const StatusOr<std::string> fields = reader.Begin(kTableMagic, "table");
  if (!fields.ok()) return fields.status();
  MTPS_RETURN_IF_ERROR(reader.Error(CheckTableFields(*fields, spec)));

  std::vector<std::unique_ptr<EmbeddingTable>> parts;
  for (int s = 0; s < num_shards; ++s) {
    MTPS_ASSIGN_OR_RETURN(auto part, EmbeddingTable::Create(spec, static_cast<uint32_t>(num_shards)));
    parts.push_back(std::move(part));
  }
  const size_t record = kRowMetaBytes + parts[0]->layout().stored_value_bytes();
  // Rows arrive in the writer's index order; each part is sized for its share first (the
  // file's size bounds the row count), or loading is quadratic (RowIndex::Reserve).
  if (StatusOr<std::unique_ptr<ReadableFile>> file = fs.NewReadableFile(path); file.ok()) {
    const uint64_t most_rows = (*file)->Size() / record;
    const uint64_t share = most_rows / static_cast<uint64_t>(num_shards);
    for (auto& part : parts) part->ReserveRows(share + share / 8 + 16);
  }
  std::string payload;
  for (;;) {
    uint32_t rows = 0;
    MTPS_ASSIGN_OR_RETURN(bool more, reader.NextBlock(&payload, &rows));
    if (!more) break;
    if (payload.size() != size_t{rows} * record) {
      return reader.Error(reader.BlockError(std::to_string(rows) + " rows of " +
                                            std::to_string(record) + " bytes in " +
                                            std::to_string(payload.size()) + " bytes"));
    }
    for (const char* rec = payload.data(); rec < payload.data() + payload.size(); rec += record) {
      InsertEncodedRow(rec, parts);
    }
  }
  return parts;
}

StatusOr<CheckpointFileInfo> SaveTableCheckpoint(FileSystem& fs, const std::string& path,
                                                 ShardedTables& tables, uint32_t table_id) {
  MTPS_ASSIGN_OR_RETURN(const TableSpec* spec, tables.Spec(table_id));
  FrameWriter writer(fs, path);
  MTPS_RETURN_IF_ERROR(writer.Begin(kTableMagic, EncodeTableFields(*spec)));
  Status rows_status;
  MTPS_RETURN_IF_ERROR(tables.ForEachShard(table_id, [&](int, EmbeddingTable& table) {
    if (rows_status.ok()) rows_status = WriteRows(writer, table);
    table.ResetChanges();  // the next increment starts from what was just written
  }));
  MTPS_RETURN_IF_ERROR(rows_status);
  return writer.Finish();
}

StatusOr<CheckpointFileInfo> SaveTableIncrement(FileSystem& fs, const std::string& path,
                                                ShardedTables& tables, uint32_t table_id,
                                                uint64_t checkpoint_id, uint64_t base_id) {
  MTPS_ASSIGN_OR_RETURN(const TableSpec* spec, tables.Spec(table_id));
  if (base_id == 0 || base_id >= checkpoint_id) {
    return InvalidArgument("checkpoint '" + path + "': an increment of checkpoint " +
                           std::to_string(checkpoint_id) + " cannot build on checkpoint " +
                           std::to_string(base_id));
  }
  // Checked first so that no shard forgets its changes for an increment never written.
  int untracked = -1;
  MTPS_RETURN_IF_ERROR(tables.ForEachShard(table_id, [&](int shard, EmbeddingTable& table) {
    if (!table.ChangesTracked() && untracked < 0) untracked = shard;
  }));
  if (untracked >= 0) {
    return FailedPrecondition("table '" + spec->name + "' (shard " + std::to_string(untracked) +
                              ") does not know every change since its last checkpoint (never "
                              "written, loaded, or too many removals): it needs a whole one");
  }
  FrameWriter writer(fs, path);
  MTPS_RETURN_IF_ERROR(
      writer.Begin(kIncrementMagic, EncodeIncrementFields(checkpoint_id, base_id, *spec)));
  Status rows_status;
  MTPS_RETURN_IF_ERROR(tables.ForEachShard(table_id, [&](int shard, EmbeddingTable& table) {
    if (!rows_status.ok()) return;
    if (!table.ChangesTracked()) {  // stopped since the check: removals overflowed
      rows_status = FailedPrecondition("table '" + spec->name + "' (shard " +
                                       std::to_string(shard) +
                                       ") stopped tracking its changes: it needs a whole checkpoint");
      return;
    }
    rows_status = WriteChanges(writer, table);
    table.ResetChanges();
  }));
  MTPS_RETURN_IF_ERROR(rows_status);
  MTPS_ASSIGN_OR_RETURN(CheckpointFileInfo info, writer.Finish());
  info.base_id = base_id;
  return info;
}

Status ApplyTableIncrement(FileSystem& fs, const std::string& path, uint64_t checkpoint_id,
                           uint64_t base_id, std::vector<std::unique_ptr<EmbeddingTable>>& parts) {
  if (parts.empty()) return InvalidArgument("checkpoint '" + path + "': no table to apply it to");
  const TableSpec& spec = parts[0]->spec();
  FrameReader reader(fs, path);
  const StatusOr<std::string> fields = reader.Begin(kIncrementMagic, "table increment");
  if (!fields.ok()) return fields.status();
  if (fields->size() < 16) return reader.Error(DataLoss("malformed increment header"));
  uint64_t file_id, file_base;
  std::memcpy(&file_id, fields->data(), 8);
  std::memcpy(&file_base, fields->data() + 8, 8);
  if (file_id != checkpoint_id || file_base != base_id) {
    return reader.Error(DataLoss(
        "written as checkpoint " + std::to_string(file_id) + "'s increment over checkpoint " +
        std::to_string(file_base) + ", but the manifest lists it in checkpoint " +
        std::to_string(checkpoint_id) + " over " + std::to_string(base_id) +
        " (copied in from another chain)"));
  }
  MTPS_RETURN_IF_ERROR(reader.Error(CheckTableFields(fields->substr(16), spec)));
  // Every block is read and checked before anything is applied: a damaged increment
  // leaves `parts` as they were.
  const size_t row_record = 1 + kRowMetaBytes + parts[0]->layout().stored_value_bytes();
  std::vector<std::string> payloads;
  for (;;) {
    std::string payload;
    uint32_t records = 0;
    MTPS_ASSIGN_OR_RETURN(bool more, reader.NextBlock(&payload, &records));
    if (!more) break;
    size_t at = 0;
    for (uint32_t i = 0; i < records; ++i) {
      const uint8_t tag = at < payload.size() ? static_cast<uint8_t>(payload[at]) : 0;
      const size_t size = tag == kRowRecord ? row_record : tag == kRemovedRecord ? 1 + 8 : 0;
      if (size == 0 || payload.size() - at < size) {
        return reader.Error(reader.BlockError("record " + std::to_string(i) + " at byte " +
                                              std::to_string(at) + " is malformed"));
      }
      at += size;
    }
    if (at != payload.size()) {
      return reader.Error(reader.BlockError(std::to_string(payload.size() - at) +
                                            " bytes after its " + std::to_string(records) +
                                            " records"));
    }
    payloads.push_back(std::move(payload));
  }
  const uint32_t num_shards = static_cast<uint32_t>(parts.size());
  for (const std::string& payload : payloads) {
    for (size_t at = 0; at < payload.size();) {
      if (static_cast<uint8_t>(payload[at]) == kRemovedRecord) {
        uint64_t key;
        std::memcpy(&key, payload.data() + at + 1, 8);
        parts[ShardOfKey(key, num_shards)]->Erase(key);
        at += 1 + 8;
      } else {
        InsertEncodedRow(payload.data() + at + 1, parts);
        at += row_record;
      }
    }
  }
  return Status::OK();
}

StatusOr<std::vector<std::unique_ptr<EmbeddingTable>>> LoadTableChain(
    FileSystem& fs, const std::vector<ChainFile>& chain, const TableSpec& spec, int num_shards) {
  if (chain.empty()) return InvalidArgument("an empty checkpoint chain");
  if (chain.front().base_id != 0) {
    return DataLoss("checkpoint '" + chain.front().path + "' is an increment, not a whole file");
  }
  MTPS_ASSIGN_OR_RETURN(auto parts, LoadTableParts(fs, chain.front().path, spec, num_shards));
  for (size_t i = 1; i < chain.size(); ++i) {
    MTPS_RETURN_IF_ERROR(ApplyTableIncrement(fs, chain[i].path, chain[i].manifest.id,
                                             chain[i].base_id, parts));
  }
  return parts;
}

Status LoadTableCheckpoint(FileSystem& fs, const std::string& path,
                           ShardedTables& tables, uint32_t table_id) {
  MTPS_ASSIGN_OR_RETURN(const TableSpec* spec, tables.Spec(table_id));
  MTPS_ASSIGN_OR_RETURN(auto parts, LoadTableParts(fs, path, *spec, tables.num_shards()));
  return tables.ReplaceTable(table_id, std::move(parts));
}

// --- Dense file: one record per block: id, name, update count, sizes, values, state ---

StatusOr<CheckpointFileInfo> SaveDenseCheckpoint(FileSystem& fs, const std::string& path,
                                                 const DenseBlockStore& store) {
  FrameWriter writer(fs, path);
  ByteWriter fields;
  fields.Put<uint32_t>(static_cast<uint32_t>(store.spec().type));
  MTPS_RETURN_IF_ERROR(writer.Begin(kDenseMagic, fields.bytes()));
  for (const DenseBlockSnapshot& b : store.Snapshot()) {
    ByteWriter rec;
    rec.Put<uint32_t>(b.id);
    rec.PutString(b.name);
    rec.Put<uint64_t>(b.update_count);
    rec.Put<uint64_t>(b.values.size());
    rec.Put<uint64_t>(b.state.size());
    rec.PutBytes(b.values.data(), sizeof(float) * b.values.size());
    rec.PutBytes(b.state.data(), sizeof(float) * b.state.size());
    std::memcpy(writer.NewRecord(rec.bytes().size()), rec.bytes().data(), rec.bytes().size());
    MTPS_RETURN_IF_ERROR(writer.RecordDone());
  }
  return writer.Finish();
}

Status LoadDenseCheckpoint(FileSystem& fs, const std::string& path,
                           DenseBlockStore& store) {
  FrameReader reader(fs, path);
  StatusOr<std::string> fields = reader.Begin(kDenseMagic, "dense block");
  if (!fields.ok()) return fields.status();
  if (fields->size() != sizeof(uint32_t)) return reader.Error(DataLoss("malformed dense header"));
  uint32_t optimizer;
  std::memcpy(&optimizer, fields->data(), sizeof(optimizer));
  if (optimizer != static_cast<uint32_t>(store.spec().type)) {
    return reader.Error(FailedPrecondition(
        "written for another dense optimizer: " + std::to_string(optimizer) + " in the file, " +
        OptimizerTypeName(store.spec().type) + " on this server"));
  }
  std::vector<DenseBlockSnapshot> blocks;
  std::string payload;
  for (;;) {
    uint32_t rows = 0;
    MTPS_ASSIGN_OR_RETURN(bool more, reader.NextBlock(&payload, &rows));
    if (!more) break;
    ByteReader r(payload);
    for (uint32_t i = 0; i < rows; ++i) {
      DenseBlockSnapshot b;
      b.id = r.Get<uint32_t>();
      b.name = r.GetString();
      b.update_count = r.Get<uint64_t>();
      const uint64_t values = r.Get<uint64_t>();
      const uint64_t state = r.Get<uint64_t>();
      if (!r.ok() || values > payload.size() || state > payload.size()) break;
      b.values.resize(values);
      b.state.resize(state);
      r.GetBytes(b.values.data(), sizeof(float) * values);
      r.GetBytes(b.state.data(), sizeof(float) * state);
      if (!r.ok()) break;
      blocks.push_back(std::move(b));
    }
    if (!r.ok() || !r.done()) {
      return reader.Error(reader.BlockError("malformed dense block record"));
    }
  }
  return reader.Error(store.Restore(std::move(blocks)));
}

}  // namespace mtps::ps
