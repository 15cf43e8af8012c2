// libFuzzer target: the checkpoint loader. Each input is one file, read through an
// in-memory FileSystem as a table file of each of the fuzz job's tables (fp32,
// fp16 and bf16 rows; SGD, Adagrad and FTRL state), as the dense-block file, and from
// disk as a manifest.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <glog/logging.h>

#include "benchmarks/fuzz/fuzz_entry.h"
#include "benchmarks/fuzz/fuzz_inputs.h"
#include "ps/checkpoint.h"
#include "base/checkpoint_manifest.h"
#include "ps/dense_block.h"

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

struct Harness {
  Harness() : job(ServerJob()), manifest_file(".manifest") {}

  void Run(const uint8_t* data, size_t size) {
    fs.Set(data, size);
    for (const TableSpec& spec : job.tables) {
      (void)ps::LoadTableParts(fs, "fuzz.table.ckpt", spec, /*num_shards=*/2);
    }
    ps::DenseBlockStore dense(job.training.dense_optimizer);
    (void)ps::LoadDenseCheckpoint(fs, "fuzz.dense.ckpt", dense);
    (void)ReadCheckpointManifest(manifest_file.Write(data, size));
  }

  const JobSpec job;
  InputFileSystem fs;
  ScratchFile manifest_file;
};

}  // namespace
}  // namespace mtps::fuzz

MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
