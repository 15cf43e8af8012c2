// Checkpoint manifests: writing one atomically, reading one back strictly, and finding
// the newest whole checkpoint of a server under a root directory.
#include "base/checkpoint_manifest.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <system_error>

#include "base/atomic_file.h"
#include "base/checkpoint_chain.h"
#include "base/crc32c.h"

namespace mtps {
namespace {

// Version 2 ends with "crc32c <CRC32C of every byte before that line>"; version 1 (no
// checksum) is still read, and a checksum line in it is refused as an unknown entry.
constexpr char kMagicLine[] = "mtps-checkpoint-manifest 2";
constexpr char kMagicLineV1[] = "mtps-checkpoint-manifest 1";
constexpr char kChecksumWord[] = "crc32c ";

// A CRC32C written in decimal: digits only, at most 2^32 - 1.
bool ParseChecksum(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 10) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > 0xFFFFFFFFull) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

std::string CheckpointDir(const std::string& root, uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof(name), "ckpt-%010" PRIu64, id);
  return root + "/" + name;
}

std::string ManifestPath(const std::string& dir) { return dir + "/MANIFEST"; }

std::string ServerManifestPath(const std::string& dir, int server_rank) {
  return dir + "/MANIFEST.server-" + std::to_string(server_rank);
}

Status WriteCheckpointManifest(FileSystem& fs, const std::string& path,
                               const CheckpointManifest& manifest) {
  std::ostringstream text;
  text << kMagicLine << "\nid " << manifest.id << "\nstep " << manifest.step << "\n";
  for (const auto& f : manifest.files) {
    if (f.base_id != 0) {
      text << "increment " << f.base_id << " " << f.bytes << " " << f.checksum << " " << f.path
           << "\n";
    } else {
      text << "file " << f.bytes << " " << f.checksum << " " << f.path << "\n";
    }
  }
  for (const auto& w : manifest.workers)
    text << "worker " << w.rank << " " << w.epoch << " " << w.records << " " << w.step << "\n";
  std::string bytes = text.str();
  bytes += kChecksumWord + std::to_string(Crc32c(bytes.data(), bytes.size())) + "\n";
  return WriteFileAtomically(fs, path, bytes);
}

StatusOr<CheckpointManifest> ReadCheckpointManifest(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return NotFound("cannot open checkpoint manifest " + path);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return DataLoss("cannot read checkpoint manifest " + path);
  // Nothing in a manifest may be taken on trust (a flipped digit of a step, an id, a data
  // position or a base would restore a state no checkpoint held): version 2 checks its
  // last line's CRC32C over the rest before reading a field.
  if (bytes.starts_with(std::string(kMagicLine) + "\n")) {
    if (!bytes.ends_with("\n")) return DataLoss(path + ": manifest ends mid-line (truncated)");
    const size_t last = bytes.rfind('\n', bytes.size() - 2) + 1;
    const std::string_view checksum_line(bytes.data() + last, bytes.size() - 1 - last);
    uint32_t stored = 0;
    if (!checksum_line.starts_with(kChecksumWord) ||
        !ParseChecksum(checksum_line.substr(std::strlen(kChecksumWord)), &stored)) {
      return DataLoss(path + ": manifest does not end with its checksum line (truncated?): '" +
                      std::string(checksum_line.substr(0, 64)) + "'");
    }
    const uint32_t computed = Crc32c(bytes.data(), last);
    if (stored != computed) {
      return DataLoss(path + ": manifest checksum mismatch (CRC32C " + std::to_string(computed) +
                      ", its last line says " + std::to_string(stored) + "): damaged");
    }
    bytes.resize(last);
  } else if (!bytes.starts_with(std::string(kMagicLineV1) + "\n") && bytes != kMagicLineV1) {
    const std::string first = bytes.substr(0, std::min(bytes.find('\n'), size_t{64}));
    return DataLoss(path + ":1: not an mtps checkpoint manifest: '" + first + "'");
  }
  std::istringstream in(bytes);
  CheckpointManifest manifest;
  std::string line;
  int line_no = 0;
  auto bad = [&](const std::string& why) {
    return DataLoss(path + ":" + std::to_string(line_no) + ": " + why + ": '" + line + "'");
  };
  bool saw_magic = false, saw_id = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) {
      if (line != kMagicLine && line != kMagicLineV1) return bad("not an mtps checkpoint manifest");
      saw_magic = true;
      continue;
    }
    std::istringstream fields(line);
    std::string word;
    fields >> word;
    if (word == "id") {
      if (!(fields >> manifest.id)) return bad("bad id");
      saw_id = true;
    } else if (word == "step") {
      if (!(fields >> manifest.step)) return bad("bad step");
    } else if (word == "file" || word == "increment") {
      CheckpointFileInfo f;
      if (word == "increment" && (!(fields >> f.base_id) || f.base_id == 0)) {
        return bad("bad increment base");
      }
      if (!(fields >> f.bytes >> f.checksum)) return bad("bad file entry");
      std::getline(fields >> std::ws, f.path);
      if (f.path.empty()) return bad("file entry without a path");
      manifest.files.push_back(std::move(f));
    } else if (word == "worker") {
      WorkerPosition w;
      if (!(fields >> w.rank >> w.epoch >> w.records >> w.step) || w.rank < 0) {
        return bad("bad worker position");
      }
      manifest.workers.push_back(w);
    } else if (!word.empty()) {
      return bad("unknown entry");
    }
  }
  if (!saw_magic || !saw_id) return DataLoss(path + ": manifest ends before its id line");
  return manifest;
}

StatusOr<std::string> FindNewestCheckpoint(const std::string& root, int server_rank) {
  std::error_code ec;
  std::filesystem::directory_iterator it(root, ec);
  if (ec) return NotFound("cannot list checkpoint root " + root + ": " + ec.message());
  const std::vector<WholeCheckpoint> whole = ListWholeCheckpoints(root, server_rank);
  for (const WholeCheckpoint& checkpoint : whole) {
    if (checkpoint.manifest.ok() && CheckChainsComplete(whole, checkpoint).ok()) {
      return checkpoint.dir;
    }
  }
  return NotFound("no whole checkpoint (a directory with a manifest and every increment's "
                  "chain) under " + root + " for server " + std::to_string(server_rank));
}

std::vector<WholeCheckpoint> ListWholeCheckpoints(const std::string& root, int server_rank) {
  std::vector<std::pair<uint64_t, WholeCheckpoint>> found;
  std::error_code ec;
  std::filesystem::directory_iterator it(root, ec);
  if (ec) return {};
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) continue;
    const std::string dir = entry.path().string();
    const std::string name = entry.path().filename().string();
    // "ckpt-<id>" (the scheduler's) or any other name: ordered by the digits it ends with.
    uint64_t id = 0;
    const size_t digits = name.find_last_not_of("0123456789");
    if (digits + 1 < name.size()) id = std::stoull(name.substr(digits + 1));
    for (const std::string& path : {ManifestPath(dir), ServerManifestPath(dir, server_rank)}) {
      if (!std::filesystem::exists(path, ec)) continue;
      StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(path);
      if (manifest.ok()) id = std::max(id, manifest->id);
      found.push_back({id, WholeCheckpoint{dir, path, std::move(manifest)}});
      break;
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<WholeCheckpoint> whole;
  for (auto& [id, checkpoint] : found) whole.push_back(std::move(checkpoint));
  return whole;
}

Status VerifyCheckpointFile(FileSystem& fs, const CheckpointManifest& manifest,
                            const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  const CheckpointFileInfo* listed = nullptr;
  for (const CheckpointFileInfo& f : manifest.files) {
    if (std::filesystem::path(f.path).filename().string() == name) listed = &f;
  }
  if (listed == nullptr) {
    return DataLoss(path + " is not listed in the manifest of checkpoint " +
                    std::to_string(manifest.id));
  }
  StatusOr<std::unique_ptr<ReadableFile>> file = fs.NewReadableFile(path);
  if (!file.ok()) return DataLoss("checkpoint file " + path + " is missing: " + file.status().message());
  if ((*file)->Size() != listed->bytes) {
    return DataLoss("checkpoint file " + path + " has " + std::to_string((*file)->Size()) +
                    " bytes, the manifest says " + std::to_string(listed->bytes));
  }
  uint32_t crc = 0;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    size_t read = 0;
    MTPS_RETURN_IF_ERROR((*file)->Read(buffer.data(), buffer.size(), &read));
    crc = Crc32cExtend(crc, buffer.data(), read);
    if (read < buffer.size()) break;
  }
  if (crc != listed->checksum) {
    return DataLoss("checkpoint file " + path + " has CRC32C " + std::to_string(crc) +
                    ", the manifest says " + std::to_string(listed->checksum) +
                    " (damaged, or copied in from another checkpoint)");
  }
  return Status::OK();
}

}  // namespace mtps
