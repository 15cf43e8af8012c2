// Chains of incremental checkpoint files: resolving a file's chain back to its whole file,
// and the closure of checkpoints that kept ones build on (for retention).
#include "base/checkpoint_chain.h"

#include <algorithm>
#include <filesystem>
#include <map>

namespace mtps {
namespace {

std::string FileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

const CheckpointFileInfo* FindFile(const CheckpointManifest& manifest, const std::string& name) {
  for (const CheckpointFileInfo& f : manifest.files) {
    if (FileName(f.path) == name) return &f;
  }
  return nullptr;
}

}  // namespace

StatusOr<std::vector<ChainFile>> ResolveCheckpointChain(
    const std::vector<WholeCheckpoint>& checkpoints, const WholeCheckpoint& newest,
    const std::string& file_name) {
  if (!newest.manifest.ok()) return newest.manifest.status();
  std::map<uint64_t, const WholeCheckpoint*> by_id;
  for (const WholeCheckpoint& c : checkpoints) {
    if (c.manifest.ok()) by_id.emplace(c.manifest->id, &c);
  }
  std::vector<ChainFile> chain;
  const WholeCheckpoint* at = &newest;
  for (;;) {
    const CheckpointManifest& manifest = *at->manifest;
    const CheckpointFileInfo* file = FindFile(manifest, file_name);
    if (file == nullptr) {
      return DataLoss(file_name + " is not listed in the manifest of checkpoint " +
                      std::to_string(manifest.id) + " (" + at->dir + ")" +
                      (chain.empty() ? std::string()
                                     : ", which checkpoint " + std::to_string(newest.manifest->id) +
                                           "'s increment builds on"));
    }
    chain.push_back(ChainFile{at->dir + "/" + file_name, manifest, file->base_id});
    if (file->base_id == 0) break;
    if (file->base_id >= manifest.id) {
      return DataLoss(file_name + " of checkpoint " + std::to_string(manifest.id) +
                      " claims to build on checkpoint " + std::to_string(file->base_id) +
                      ", which is not older");
    }
    auto base = by_id.find(file->base_id);
    if (base == by_id.end()) {
      return DataLoss("the increment " + file_name + " of checkpoint " +
                      std::to_string(manifest.id) + " builds on checkpoint " +
                      std::to_string(file->base_id) +
                      ", which is gone or has no readable manifest: the chain is broken");
    }
    at = base->second;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

Status CheckChainsComplete(const std::vector<WholeCheckpoint>& checkpoints,
                           const WholeCheckpoint& newest) {
  if (!newest.manifest.ok()) return newest.manifest.status();
  for (const CheckpointFileInfo& f : newest.manifest->files) {
    if (f.base_id == 0) continue;
    StatusOr<std::vector<ChainFile>> chain =
        ResolveCheckpointChain(checkpoints, newest, FileName(f.path));
    if (!chain.ok()) return chain.status();
  }
  return Status::OK();
}

std::set<uint64_t> CheckpointsNeeded(const std::string& root, const std::vector<uint64_t>& keep) {
  std::set<uint64_t> needed;
  std::vector<uint64_t> work(keep.begin(), keep.end());
  while (!work.empty()) {
    const uint64_t id = work.back();
    work.pop_back();
    if (!needed.insert(id).second) continue;
    const std::string dir = CheckpointDir(root, id);
    std::vector<std::string> manifests = {ManifestPath(dir)};
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("MANIFEST.server-") && !name.ends_with(".tmp")) {
        manifests.push_back(entry.path().string());
      }
    }
    for (const std::string& path : manifests) {
      StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(path);
      if (!manifest.ok()) continue;
      for (const CheckpointFileInfo& f : manifest->files) {
        if (f.base_id != 0 && f.base_id < id) work.push_back(f.base_id);
      }
    }
  }
  return needed;
}

}  // namespace mtps
