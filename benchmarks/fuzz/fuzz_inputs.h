// What the fuzz targets and their seed generator share: the job specs they fuzz against,
// the byte layouts of a wire-fuzz input (messages of frames) and of a checkpoint-chain
// input (files of checkpoint directories), and a scratch file per process.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/data/datagen.h"

namespace mtps::fuzz {

// The data set the .mtb and CSV seeds come from; the targets read against its spec. A
// small world keeps the seed files a few KB, which is what libFuzzer mutates well.
inline DatagenOptions SeedDataOptions(DataSpec::Format format) {
  DatagenOptions o;
  o.out_dir = "/nonexistent/mtps-fuzz";  // the spec's data paths are never opened
  o.rows = 48;
  o.eval_fraction = 0.25;
  o.train_files = 1;
  o.format = format;
  o.rating = true;
  o.row_group_rows = 16;
  o.threads = 1;
  o.world.users = 40;
  o.world.items = 30;
  o.world.categories = 5;
  o.world.shops = 6;
  return o;
}

// The parameter server's job: one table per precision and optimizer family, and a row
// capacity, so that a long run's pulls of new keys evict instead of growing without end.
inline const char kServerJobYaml[] = R"(
name: fuzz-server
data: {format: mtb, train: [unused.mtb]}
features:
  sparse:
    - {name: user_id, table: user}
    - {name: item_id, table: item}
    - {name: shop, table: shop}
tables:
  - {name: user, dim: 8, optimizer: {type: sgd, lr: 0.5}, capacity_rows: 20000}
  - {name: item, dim: 4, precision: fp16, optimizer: {type: adagrad, lr: 0.1}, capacity_rows: 20000}
  - {name: shop, dim: 3, precision: bf16, optimizer: {type: ftrl}, capacity_rows: 20000, admit_min_count: 2}
model: {type: mmoe}
tasks:
  - {name: ctr, label: click, loss: bce}
training:
  dense_optimizer: {type: adam, lr: 0.01}
)";

inline JobSpec ServerJob() {
  StatusOr<JobSpec> job = ParseJobSpec(kServerJobYaml, "fuzz server job");
  if (!job.ok()) {
    std::fprintf(stderr, "fuzz: bad built-in job spec: %s\n", job.status().ToString().c_str());
    std::abort();
  }
  return *job;
}

// A wire-fuzz input is a sequence of at most kMaxWireMessages messages, each
//   u8 frame count (1 + value % kMaxWireFrames), then per frame a u32 little-endian length
//   (cut to what is left) and that many bytes.
// Several messages in one input let the fuzzer build state (a sync step's pushes).
inline constexpr int kMaxWireMessages = 8;
inline constexpr int kMaxWireFrames = 4;

using WireMessage = std::vector<std::string_view>;  // frames

inline std::vector<WireMessage> SplitWireInput(const uint8_t* data, size_t size) {
  std::vector<WireMessage> messages;
  size_t at = 0;
  while (at < size && messages.size() < kMaxWireMessages) {
    const int frames = 1 + data[at++] % kMaxWireFrames;
    WireMessage message;
    for (int f = 0; f < frames; ++f) {
      uint32_t length = 0;
      const size_t header = std::min<size_t>(4, size - at);
      std::memcpy(&length, data + at, header);  // a short header reads as a short length
      at += header;
      const size_t n = std::min<size_t>(length, size - at);
      message.emplace_back(reinterpret_cast<const char*>(data + at), n);
      at += n;
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

inline void AppendWireMessage(const std::vector<std::string>& frames, std::string* out) {
  out->push_back(static_cast<char>(frames.size() - 1));
  for (const std::string& frame : frames) {
    const uint32_t length = static_cast<uint32_t>(frame.size());
    out->append(reinterpret_cast<const char*>(&length), 4);
    out->append(frame);
  }
}

// A checkpoint-chain input (the checkpoint target's second form): the files of checkpoint
// directories ckpt-1..kChainCheckpoints under one root, as a server restores them:
//   "MTPSCHN1", u8 flags (bit 0: kChainFixManifests), then entries of
//   u8 file (index % ChainFileNames().size()), u32 little-endian length (cut to what is
//   left), that many bytes. A later entry of the same file replaces it; a file without an
//   entry is absent.
// kChainFixManifests: before restoring, every "file"/"increment" line of each manifest gets
// the real size and CRC32C of the file it names, and a version 2 manifest its checksum line
// anew, so that damaged files reach the parsers behind those checks (as fuzz builds accept
// any stored checksum inside the files). Without it the manifests are used as given.
inline constexpr char kChainMagic[] = "MTPSCHN1";
inline constexpr int kChainCheckpoints = 3;
inline constexpr uint8_t kChainFixManifests = 1;

// "ckpt-0000000001/MANIFEST", ".../server-0.table-<name>.ckpt" per fuzz table, and
// ".../server-0.dense.ckpt", for each checkpoint.
inline std::vector<std::string> ChainFileNames(const JobSpec& job) {
  std::vector<std::string> names;
  for (int c = 1; c <= kChainCheckpoints; ++c) {
    const std::string dir = "ckpt-000000000" + std::to_string(c) + "/";
    names.push_back(dir + "MANIFEST");
    for (const TableSpec& t : job.tables) names.push_back(dir + "server-0.table-" + t.name + ".ckpt");
    names.push_back(dir + "server-0.dense.ckpt");
  }
  return names;
}

inline void AppendChainEntry(uint8_t file, const std::string& bytes, std::string* out) {
  out->push_back(static_cast<char>(file));
  const uint32_t length = static_cast<uint32_t>(bytes.size());
  out->append(reinterpret_cast<const char*>(&length), 4);
  out->append(bytes);
}

// A file of this process that a target rewrites with each input (the readers under test
// open paths). It lives in /dev/shm when there is one, to keep the disk out of the loop.
class ScratchFile {
 public:
  explicit ScratchFile(const char* suffix) {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    path_ = std::string(dir) + "/mtps-fuzz-" + std::to_string(getpid()) + suffix;
  }
  ~ScratchFile() { unlink(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& Write(const uint8_t* data, size_t size) {
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mtps::fuzz
