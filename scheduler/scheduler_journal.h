// SchedulerJournal: what the scheduler must not forget when it dies — the cluster (ranks,
// addresses, keys, generations), the job's phase, the last committed checkpoint and the
// workers' data positions there, the barriers already passed, and each worker's progress
// (done, final evaluation). A restarted scheduler (`mtps-scheduler --restore`) reads it and
// the job goes on: nodes keep their ranks and generations and carry on heartbeating.
//
//   MTPS_RETURN_IF_ERROR(WriteSchedulerJournal(fs, JournalPath(root), journal));
//   StatusOr<SchedulerJournal> back = ReadSchedulerJournal(fs, JournalPath(root));
//
// The file is text, one record a line, behind a header with its size and CRC32C; it is
// written to a temporary name, fsynced and renamed, so a reader sees the old or the new
// journal, never a mix. A damaged one is refused (DATA_LOSS naming the path and why).
// Thread-safety: free functions; the structs are plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/file_system.h"
#include "base/checkpoint_manifest.h"
#include "scheduler/failure_detector.h"
#include "scheduler/membership.h"
#include "scheduler/progress_tracker.h"

namespace mtps::scheduler {

// The checkpoint that holds the best epoch's model (the scheduler keeps it on disk).
struct BestModel {
  uint32_t epoch = 0;
  uint64_t checkpoint_id = 0;
};

struct SchedulerJournal {
  uint64_t spec_hash = 0;
  int num_servers = 0;
  int num_workers = 0;
  uint64_t incarnation = 0;        // starts of the scheduler so far (1 = the first)
  std::string phase = "running";   // "running", "finishing", "done" or "failed"
  Membership::Saved membership;
  std::vector<NodeKey> lost;       // declared lost, awaiting a replacement
  std::set<NodeKey> rejoined;      // replacements of lost nodes
  std::optional<uint64_t> last_checkpoint_step;
  uint64_t next_checkpoint_step = 0;
  std::vector<WorkerPosition> committed_positions;  // of the last committed checkpoint
  std::set<std::string> released_barriers;
  std::optional<BestModel> best_model;
  std::vector<ProgressTracker::WorkerState> progress;   // by worker rank
};

// "<root>/scheduler.journal".
std::string JournalPath(const std::string& checkpoint_root);

std::string EncodeSchedulerJournal(const SchedulerJournal& journal);
// `path` only names the source in errors.
StatusOr<SchedulerJournal> DecodeSchedulerJournal(std::string_view bytes, const std::string& path);

Status WriteSchedulerJournal(FileSystem& fs, const std::string& path,
                             const SchedulerJournal& journal);
// NOT_FOUND when there is no journal; DATA_LOSS when it is damaged.
StatusOr<SchedulerJournal> ReadSchedulerJournal(FileSystem& fs, const std::string& path);

}  // namespace mtps::scheduler
