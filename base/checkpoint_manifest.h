// The manifest that makes a checkpoint directory whole: written last, it lists every
// file with its size and checksum; a directory without one is an unfinished checkpoint.
//
//   MTPS_RETURN_IF_ERROR(WriteCheckpointManifest(fs, ManifestPath(dir), manifest));
//   StatusOr<CheckpointManifest> m = ReadCheckpointManifest(ManifestPath(dir));
//   StatusOr<std::string> newest = FindNewestCheckpoint(root, /*server_rank=*/1);
//
// Text format, one item a line: "mtps-checkpoint-manifest 2", "id <u64>", "step <u64>",
// then "file <bytes> <checksum> <path>" per whole file (path last: it may hold spaces) or
// "increment <base id> <bytes> <checksum> <path>" per incremental file (only what changed
// since the same file of checkpoint <base id>; base/checkpoint_chain.h resolves the chain),
// then "worker <rank> <epoch> <records> <step>" per worker data position, and last
// "crc32c <CRC32C of every byte before this line>": a manifest that was damaged or cut
// short is DATA_LOSS (version 1, written before, has no checksum line and still reads). The
// scheduler writes "<dir>/MANIFEST" for the whole cluster; a standalone server (no
// scheduler) writes "<dir>/MANIFEST.server-<rank>" for its own files.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/status.h"

namespace mtps {

// One file of a checkpoint as the manifest lists it.
struct CheckpointFileInfo {
  std::string path;
  uint64_t bytes = 0;
  uint64_t checksum = 0;  // CRC32C of the whole file
  // 0: the file is whole. Otherwise it holds only the changes since the file of the same
  // name in checkpoint `base_id`, which a restore must apply first.
  uint64_t base_id = 0;
};

// Where a worker's data stream stood at a checkpoint's cut: `records` of `epoch` trained.
struct WorkerPosition {
  int rank = -1;
  uint32_t epoch = 0;
  uint64_t records = 0;
  uint64_t step = 0;
};

struct CheckpointManifest {
  uint64_t id = 0;
  uint64_t step = 0;
  std::vector<CheckpointFileInfo> files;
  std::vector<WorkerPosition> workers;  // by rank, when the checkpoint was a consistent cut
};

// "<root>/ckpt-0000000042": where checkpoint `id` lives under a checkpoint root. Servers
// derive it from the id and their own root, never from a path in a message.
std::string CheckpointDir(const std::string& root, uint64_t id);
std::string ManifestPath(const std::string& dir);                       // cluster's
std::string ServerManifestPath(const std::string& dir, int server_rank);  // standalone

// Writes to a temporary name, syncs, renames, syncs the directory.
Status WriteCheckpointManifest(FileSystem& fs, const std::string& path,
                               const CheckpointManifest& manifest);
// DATA_LOSS naming the path and line for a malformed manifest.
StatusOr<CheckpointManifest> ReadCheckpointManifest(const std::string& path);

// The directory under `root` holding the whole checkpoint with the largest id that
// `server_rank` can restore from (a cluster manifest or its own) whose every incremental
// file has its whole chain of bases on disk; a damaged manifest or a broken chain is
// skipped. NOT_FOUND when none.
StatusOr<std::string> FindNewestCheckpoint(const std::string& root, int server_rank);

struct WholeCheckpoint {
  std::string dir;
  std::string manifest_path;
  StatusOr<CheckpointManifest> manifest;  // DATA_LOSS when the manifest itself is damaged
};
// Every checkpoint under `root` with a manifest that `server_rank` can restore from,
// newest (largest directory id) first. Empty when the root is missing or holds none.
std::vector<WholeCheckpoint> ListWholeCheckpoints(const std::string& root, int server_rank);

// Checks `path` against its entry in `manifest` (matched by file name, so a checkpoint
// directory may be moved): DATA_LOSS naming the file when it is not listed, missing, of
// another size, or of another CRC32C (e.g. a file copied in from another checkpoint).
Status VerifyCheckpointFile(FileSystem& fs, const CheckpointManifest& manifest,
                            const std::string& path);

}  // namespace mtps
