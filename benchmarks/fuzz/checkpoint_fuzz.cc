// libFuzzer target: the checkpoint loader. An input is either one file, read through an
// in-memory FileSystem as a table file of each of the fuzz job's tables (fp32, fp16 and
// bf16 rows; SGD, Adagrad and FTRL state), as the dense-block file, and from disk as a
// manifest; or (starting "MTPSCHN1", fuzz_inputs.h) a chain of checkpoints — whole files,
// increments, dense files and manifests listing the increments — that a server restores
// from disk as it does at startup. A refused restore must be an error of the damage kind
// naming the root; a restore that succeeds must leave every row on its shard, once.
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <glog/logging.h>

#include "base/checkpoint_manifest.h"
#include "base/crc32c.h"
#include "benchmarks/fuzz/fuzz_entry.h"
#include "benchmarks/fuzz/fuzz_inputs.h"
#include "ps/checkpoint.h"
#include "ps/dense_block.h"
#include "ps/key_hash.h"
#include "ps/server.h"

namespace mtps::fuzz {
namespace {

// A readable view of the current input, under any path; nothing can be written.
class InputFile : public ReadableFile {
 public:
  InputFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  Status Read(void* out, size_t size, size_t* read) override {
    const size_t n = std::min(size, size_ - at_);
    if (n > 0) std::memcpy(out, data_ + at_, n);
    at_ += n;
    *read = n;
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

class InputFileSystem : public FileSystem {
 public:
  void Set(const uint8_t* data, size_t size) {
    data_ = data;
    size_ = size;
  }
  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return PermissionDenied(path);
  }
  StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string&) override {
    return std::unique_ptr<ReadableFile>(new InputFile(data_, size_));
  }
  Status Rename(const std::string& from, const std::string&) override { return PermissionDenied(from); }
  Status SyncDir(const std::string& dir) override { return PermissionDenied(dir); }
  Status Remove(const std::string& path) override { return PermissionDenied(path); }
  Status CreateDirs(const std::string& dir) override { return PermissionDenied(dir); }

 private:
  static Status PermissionDenied(const std::string& path) {
    return FailedPrecondition("the fuzz file system is read-only: " + path);
  }
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::perror(path.c_str());
    std::abort();
  }
}

// kChainFixManifests: each "file"/"increment" line names the real size and CRC32C of the
// file it lists (when that file exists), and a version 2 manifest ends with its checksum
// computed anew. Every other line is kept as the input has it.
std::string FixManifest(const std::string& dir, const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    if (line.starts_with("crc32c ")) continue;
    std::istringstream fields(line);
    std::string word, base;
    fields >> word;
    if (word == "increment") fields >> base;
    uint64_t bytes = 0, checksum = 0;
    std::string path;
    if ((word == "file" || word == "increment") && (fields >> bytes >> checksum)) {
      std::getline(fields >> std::ws, path);
      const std::string file = dir + "/" + std::filesystem::path(path).filename().string();
      struct stat st;
      if (!path.empty() && ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        const std::string content = ReadAll(file);
        line = word + (word == "increment" ? " " + base : "") + " " +
               std::to_string(content.size()) + " " +
               std::to_string(Crc32c(content.data(), content.size())) + " " + path;
      }
    }
    out += line + "\n";
  }
  if (out.starts_with("mtps-checkpoint-manifest 2\n"))
    out += "crc32c " + std::to_string(Crc32c(out.data(), out.size())) + "\n";
  return out;
}

// Which codes a refused restore may answer: the damage kinds, never a bug or a transient.
bool RefusalCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
    case StatusCode::kResourceExhausted:
    case StatusCode::kDataLoss:
    case StatusCode::kVersionMismatch:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "checkpoint_fuzz: %s\n", why.c_str());
  std::abort();
}

struct Harness {
  Harness()
      : job(ServerJob()),
        manifest_file(".manifest"),
        root(ScratchFile(".chain").path()),
        chain_names(ChainFileNames(job)) {
    StatusOr<std::unique_ptr<ps::Server>> made =
        ps::Server::Create(job, {.rank = 0, .num_servers = 1, .shards = kShards}, nullptr);
    if (!made.ok()) Fail("cannot make the server: " + made.status().ToString());
    server = std::move(made).value();
  }
  ~Harness() { std::filesystem::remove_all(root); }

  void Run(const uint8_t* data, size_t size) {
    const size_t magic = std::strlen(kChainMagic);
    if (size > magic && std::memcmp(data, kChainMagic, magic) == 0) {
      RunChain(data + magic, size - magic);
      return;
    }
    fs.Set(data, size);
    for (const TableSpec& spec : job.tables) {
      (void)ps::LoadTableParts(fs, "fuzz.table.ckpt", spec, /*num_shards=*/2);
    }
    ps::DenseBlockStore dense(job.training.dense_optimizer);
    (void)ps::LoadDenseCheckpoint(fs, "fuzz.dense.ckpt", dense);
    (void)ReadCheckpointManifest(manifest_file.Write(data, size));
  }

  void RunChain(const uint8_t* data, size_t size) {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    const uint8_t flags = size > 0 ? data[0] : 0;
    size_t at = size > 0 ? 1 : 0;
    std::set<std::string> manifests;
    while (at < size) {
      const std::string& name = chain_names[data[at++] % chain_names.size()];
      uint32_t length = 0;
      const size_t header = std::min<size_t>(4, size - at);
      std::memcpy(&length, data + at, header);
      at += header;
      const size_t n = std::min<size_t>(length, size - at);
      const std::string path = root + "/" + name;
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      WriteAll(path, std::string_view(reinterpret_cast<const char*>(data + at), n));
      at += n;
      if (name.ends_with("/MANIFEST")) manifests.insert(path);
    }
    if (flags & kChainFixManifests) {
      for (const std::string& path : manifests)
        WriteAll(path, FixManifest(std::filesystem::path(path).parent_path().string(), ReadAll(path)));
    }
    CheckpointManifest restored;
    const Status s = server->Restore(root, &restored);
    if (!s.ok()) {
      if (!RefusalCode(s.code())) Fail("a restore answered a code no damage should: " + s.ToString());
      if (s.message().find(root) == std::string::npos)
        Fail("a refused restore does not name the checkpoint root: " + s.ToString());
      return;
    }
    CheckRestoredTables();
  }

  // Every row where a lookup finds it: on the shard its key belongs to, and once.
  void CheckRestoredTables() {
    for (uint32_t t = 0; t < job.tables.size(); ++t) {
      std::set<uint64_t> keys;
      size_t rows = 0;
      std::string wrong;
      const Status s = server->tables().ForEachShard(t, [&](int shard, ps::EmbeddingTable& table) {
        table.ForEachStoredRow([&](uint64_t key, const char*, const ps::RowMeta&) {
          ++rows;
          if (ps::ShardOfKey(key, kShards) != static_cast<uint32_t>(shard))
            wrong = "key " + std::to_string(key) + " restored on shard " + std::to_string(shard);
          if (!keys.insert(key).second) wrong = "key " + std::to_string(key) + " restored twice";
        });
      });
      if (!s.ok()) Fail("cannot read a restored table: " + s.ToString());
      if (!wrong.empty()) Fail("table " + job.tables[t].name + ": " + wrong);
      StatusOr<ps::TableCounters> counters = server->tables().Counters(t);
      if (!counters.ok() || counters->rows != rows)
        Fail("table " + job.tables[t].name + " counts " +
             std::to_string(counters.ok() ? counters->rows : 0) + " rows but holds " +
             std::to_string(rows));
    }
  }

  static constexpr int kShards = 2;
  const JobSpec job;
  InputFileSystem fs;
  ScratchFile manifest_file;
  const std::string root;
  const std::vector<std::string> chain_names;
  std::unique_ptr<ps::Server> server;
};

}  // namespace
}  // namespace mtps::fuzz

MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
