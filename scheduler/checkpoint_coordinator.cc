// CheckpointCoordinator: begin → acks → manifest → commit, and retention of old checkpoints.
#include "scheduler/checkpoint_coordinator.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <future>
#include <set>

#include <glog/logging.h>

#include "base/checkpoint_chain.h"
#include "base/checkpoint_manifest.h"

namespace mtps::scheduler {

namespace {

constexpr char kDirPrefix[] = "ckpt-";

// Ids of the directories under `root` named like CheckpointDir(); `whole` keeps only
// those with a cluster manifest.
std::vector<uint64_t> CheckpointIds(const std::string& root, bool whole) {
  std::vector<uint64_t> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kDirPrefix)) continue;
    uint64_t id = 0;
    if (std::sscanf(name.c_str() + sizeof(kDirPrefix) - 1, "%" SCNu64, &id) != 1) continue;
    if (whole && !std::filesystem::exists(ManifestPath(entry.path().string()), ec)) continue;
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

uint64_t NextCheckpointId(const std::string& root) {
  std::vector<uint64_t> ids = CheckpointIds(root, /*whole=*/false);
  return ids.empty() ? 1 : ids.back() + 1;
}

CheckpointCoordinator::CheckpointCoordinator(FileSystem* fs, CheckpointOptions options)
    : fs_(fs), options_(std::move(options)) {}

StatusOr<std::string> CheckpointCoordinator::Run(const std::vector<RpcClient*>& servers,
                                                 uint64_t id, uint64_t step,
                                                 const std::vector<WorkerPosition>& positions) {
  const std::string dir = CheckpointDir(options_.root, id);
  const std::string what = "checkpoint " + std::to_string(id) + " (" + dir + ")";
  MTPS_RETURN_IF_ERROR(fs_->CreateDirs(dir).WithContext(what));

  // Begin everywhere at once; the servers write in parallel.
  std::vector<std::future<StatusOr<IncomingMessage>>> begun;
  for (RpcClient* server : servers) {
    auto request = server->NewRequest();
    auto begin = request->body().initCheckpointBegin();
    begin.setCheckpointId(id);
    begin.setDir(dir);
    begin.setStep(step);
    begun.push_back(server->Call(std::move(request), {.timeout = options_.ack_timeout}));
  }
  CheckpointManifest manifest{id, step, {}, positions};
  std::string failures;
  for (size_t rank = 0; rank < begun.size(); ++rank) {
    StatusOr<IncomingMessage> reply = Await(begun[rank]);
    Status status = reply.ok() ? ReplyStatus(*reply) : reply.status();
    if (status.ok()) {
      auto body = reply->envelope().getBody();
      if (body.which() != proto::Envelope::Body::CHECKPOINT_ACK) {
        status = InvalidArgument("answered checkpointBegin with another message kind");
      } else {
        auto ack = body.getCheckpointAck();
        if (ack.getCheckpointId() != id || ack.getServerRank() != static_cast<int32_t>(rank)) {
          status = InvalidArgument("acknowledged checkpoint " + std::to_string(ack.getCheckpointId()) +
                                   " as server " + std::to_string(ack.getServerRank()));
        } else {
          for (auto file : ack.getFiles()) {
            manifest.files.push_back(
                {file.getPath(), file.getBytes(), file.getChecksum(), file.getBaseId()});
          }
        }
      }
    }
    if (!status.ok()) {
      failures += (failures.empty() ? "" : "; ") + std::string("server ") + std::to_string(rank) +
                  " (" + servers[rank]->endpoint() + "): " + status.ToString();
    }
  }
  {
    std::lock_guard<std::mutex> lock(cancel_mutex_);
    if (cancelled_) return cancelled_->WithContext(what + " abandoned, no manifest written");
    if (abandoned_) return abandoned_->WithContext(what + " abandoned, no manifest written");
  }
  if (!failures.empty()) {
    return Unavailable(what + " abandoned, no manifest written: " + failures);
  }

  // The manifest is what makes the checkpoint whole: written only now, after every ack.
  MTPS_RETURN_IF_ERROR(
      WriteCheckpointManifest(*fs_, ManifestPath(dir), manifest).WithContext(what));

  std::vector<std::future<StatusOr<IncomingMessage>>> committed;
  for (RpcClient* server : servers) {
    auto request = server->NewRequest();
    request->body().initCheckpointCommit().setCheckpointId(id);
    committed.push_back(server->Call(std::move(request), {.timeout = options_.commit_timeout}));
  }
  for (size_t rank = 0; rank < committed.size(); ++rank) {
    StatusOr<IncomingMessage> reply = Await(committed[rank]);
    Status status = reply.ok() ? ReplyStatus(*reply) : reply.status();
    // The manifest already makes the checkpoint whole; a server that missed the commit
    // only lacks its own manifest, which it needs when it runs without a scheduler.
    LOG_IF(WARNING, !status.ok()) << what << ": commit on server " << rank << " failed: " << status;
  }
  LOG(INFO) << what << " is whole: " << manifest.files.size() << " files from " << servers.size()
            << " servers at step " << step;
  RemoveOldCheckpoints();
  return dir;
}

void CheckpointCoordinator::Cancel(const Status& reason) {
  std::lock_guard<std::mutex> lock(cancel_mutex_);
  if (!cancelled_) cancelled_ = reason;
}

void CheckpointCoordinator::ClearAbandon() {
  std::lock_guard<std::mutex> lock(cancel_mutex_);
  abandoned_.reset();
}

void CheckpointCoordinator::Abandon(const Status& reason) {
  std::lock_guard<std::mutex> lock(cancel_mutex_);
  if (!abandoned_) abandoned_ = reason;
}

StatusOr<IncomingMessage> CheckpointCoordinator::Await(std::future<StatusOr<IncomingMessage>>& reply) {
  constexpr auto kPoll = std::chrono::milliseconds(20);
  while (reply.wait_for(kPoll) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(cancel_mutex_);
    if (cancelled_) return *cancelled_;
    if (abandoned_) return *abandoned_;
  }
  return reply.get();
}

void CheckpointCoordinator::RemoveOldCheckpoints() {
  if (options_.keep <= 0) return;
  std::vector<uint64_t> whole = CheckpointIds(options_.root, /*whole=*/true);
  if (whole.size() <= static_cast<size_t>(options_.keep)) return;
  std::vector<uint64_t> keep(whole.end() - options_.keep, whole.end());
  if (const uint64_t best = kept_always_; best != 0) keep.push_back(best);
  // A kept checkpoint's increments need their bases (back to a full file): those stay too.
  const std::set<uint64_t> needed = CheckpointsNeeded(options_.root, keep);
  const uint64_t newest_kept = whole.back();
  // Also removes abandoned (manifest-less) directories older than the newest kept one
  // (checkpoints are written one at a time, so none of them is still being written).
  for (uint64_t id : CheckpointIds(options_.root, /*whole=*/false)) {
    if (id >= newest_kept) break;
    if (needed.count(id) > 0) continue;
    std::error_code ec;
    std::filesystem::remove_all(CheckpointDir(options_.root, id), ec);
    LOG_IF(WARNING, ec) << "cannot remove old checkpoint " << CheckpointDir(options_.root, id)
                        << ": " << ec.message();
  }
}

}  // namespace mtps::scheduler
