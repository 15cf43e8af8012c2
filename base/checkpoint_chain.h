// Chains of incremental checkpoint files: which files, from which checkpoints and in what
// order, a restore reads to rebuild one file's state, and which checkpoints retention keeps.
//
//   std::vector<WholeCheckpoint> all = ListWholeCheckpoints(root, rank);   // newest first
//   StatusOr<std::vector<ChainFile>> chain = ResolveCheckpointChain(all, all[0], "x.ckpt");
//   // chain->front() is the whole file, then every increment in order, chain->back() is
//   // the file of all[0] itself; each is to be checked against its own manifest.
//
// A file listed with base_id B (manifest line "increment B ...") holds only what changed
// since the file of the same name in checkpoint B, which may itself be an increment. A
// chain is broken when a base has no manifest, a damaged one, or does not list the file:
// DATA_LOSS naming the checkpoint, the file and the missing base.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/checkpoint_manifest.h"
#include "base/status.h"

namespace mtps {

struct ChainFile {
  std::string path;              // the file inside its checkpoint's directory
  CheckpointManifest manifest;   // of the checkpoint holding it (to verify it against)
  uint64_t base_id = 0;          // 0 for the whole file that starts the chain
};

// The files that rebuild `file_name` (a file name, no directory) as of checkpoint
// `newest`, an entry of `checkpoints`: its whole file first, increments after in order.
StatusOr<std::vector<ChainFile>> ResolveCheckpointChain(
    const std::vector<WholeCheckpoint>& checkpoints, const WholeCheckpoint& newest,
    const std::string& file_name);

// OK when every incremental file `newest` lists has its whole chain in `checkpoints`.
Status CheckChainsComplete(const std::vector<WholeCheckpoint>& checkpoints,
                           const WholeCheckpoint& newest);

// `keep` and every checkpoint that their incremental files build on, transitively, found
// by reading "<CheckpointDir(root, id)>/MANIFEST" and, when there is none, the standalone
// servers' own manifests. A manifest that cannot be read adds nothing.
std::set<uint64_t> CheckpointsNeeded(const std::string& root, const std::vector<uint64_t>& keep);

}  // namespace mtps
