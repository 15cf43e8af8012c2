// Checkpoint manifests: writing one atomically, reading one back strictly, and finding
// the newest whole checkpoint of a server under a root directory.
#include "ps/checkpoint_manifest.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace mtps::ps {
namespace {

constexpr char kMagicLine[] = "mtps-checkpoint-manifest 1";

}  // namespace

std::string ManifestPath(const std::string& dir) { return dir + "/MANIFEST"; }

std::string ServerManifestPath(const std::string& dir, int server_rank) {
  return dir + "/MANIFEST.server-" + std::to_string(server_rank);
}

Status WriteCheckpointManifest(CheckpointFileSystem& fs, const std::string& path,
                               const CheckpointManifest& manifest) {
  std::ostringstream text;
  text << kMagicLine << "\nid " << manifest.id << "\nstep " << manifest.step << "\n";
  for (const auto& f : manifest.files)
    text << "file " << f.bytes << " " << f.checksum << " " << f.path << "\n";
  const std::string body = text.str();
  const std::string tmp = path + ".tmp";
  MTPS_ASSIGN_OR_RETURN(auto file, fs.NewWritableFile(tmp));
  MTPS_RETURN_IF_ERROR(file->Append(body.data(), body.size()));
  MTPS_RETURN_IF_ERROR(file->Sync());
  MTPS_RETURN_IF_ERROR(file->Close());
  MTPS_RETURN_IF_ERROR(fs.Rename(tmp, path));
  return fs.SyncDir(std::filesystem::path(path).parent_path().string());
}

StatusOr<CheckpointManifest> ReadCheckpointManifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open checkpoint manifest " + path);
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
      if (line != kMagicLine) return bad("not an mtps checkpoint manifest");
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
    } else if (word == "file") {
      CheckpointFileInfo f;
      if (!(fields >> f.bytes >> f.checksum)) return bad("bad file entry");
      std::getline(fields >> std::ws, f.path);
      if (f.path.empty()) return bad("file entry without a path");
      manifest.files.push_back(std::move(f));
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
  std::string best;
  uint64_t best_id = 0;
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) continue;
    const std::string dir = entry.path().string();
    for (const std::string& path : {ManifestPath(dir), ServerManifestPath(dir, server_rank)}) {
      if (!std::filesystem::exists(path, ec)) continue;
      StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(path);
      if (!manifest.ok()) return manifest.status();
      if (best.empty() || manifest->id > best_id) {
        best = dir;
        best_id = manifest->id;
      }
    }
  }
  if (best.empty())
    return NotFound("no whole checkpoint (a directory with a manifest) under " + root +
                    " for server " + std::to_string(server_rank));
  return best;
}

}  // namespace mtps::ps
