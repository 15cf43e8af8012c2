// Membership: rank assignment, spec-hash check and the cluster view.
#include "scheduler/membership.h"

#include <cinttypes>
#include <cstdio>

namespace mtps::scheduler {

std::string FormatSpecHash(uint64_t hash) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016" PRIx64, hash);
  return buf;
}

std::string DescribeNode(const NodeRecord& node) {
  return std::string(RoleName(node.role)) + " " + std::to_string(node.rank) + " (" + node.address +
         ")";
}

Membership::Membership(int num_servers, int num_workers, uint64_t spec_hash)
    : num_servers_(num_servers),
      num_workers_(num_workers),
      spec_hash_(spec_hash),
      servers_(num_servers),
      workers_(num_workers) {}

std::vector<NodeRecord>* Membership::Slots(proto::Role role) {
  if (role == proto::Role::SERVER) return &servers_;
  if (role == proto::Role::WORKER) return &workers_;
  return nullptr;
}

const std::vector<NodeRecord>& Membership::nodes(proto::Role role) const {
  return role == proto::Role::SERVER ? servers_ : workers_;
}

const NodeRecord* Membership::Find(proto::Role role, int rank) const {
  if (role != proto::Role::SERVER && role != proto::Role::WORKER) return nullptr;
  const auto& slots = nodes(role);
  if (rank < 0 || rank >= static_cast<int>(slots.size()) || slots[rank].rank < 0) return nullptr;
  return &slots[rank];
}

StatusOr<int> Membership::Register(const NodeRecord& node) {
  std::vector<NodeRecord>* slots = Slots(node.role);
  const std::string who = std::string(RoleName(node.role)) + " at " + node.address +
                          (node.hostname.empty() ? "" : " on " + node.hostname);
  if (slots == nullptr) {
    return InvalidArgument("cannot register a node of role " + std::string(RoleName(node.role)) +
                           " (" + node.address + "): only servers and workers join a cluster");
  }
  if (node.address.empty()) return InvalidArgument("the " + who + " registers without an address");
  if (node.spec_hash != spec_hash_) {
    // The scheduler's own hash is never told: it is the job id that messages carry.
    return FailedPrecondition(who + " holds job spec hash " + FormatSpecHash(node.spec_hash) +
                              ", not the scheduler's: every node must read the same job spec file");
  }
  for (const NodeRecord& held : *slots) {
    if (held.rank >= 0 && held.address == node.address) {
      if (held.identity != node.identity) {
        return PermissionDenied(who + " (key '" + node.identity + "') asks for the rank of " +
                                DescribeNode(held) + ", registered by another key");
      }
      return held.rank;  // a retry
    }
  }
  const int size = static_cast<int>(slots->size());
  int rank = node.requested_rank;
  if (rank >= 0) {
    if (rank >= size) {
      return InvalidArgument(who + " asks for rank " + std::to_string(rank) + " but the job has " +
                             std::to_string(size) + " " + RoleName(node.role) + "s");
    }
    if ((*slots)[rank].rank >= 0) {
      return AlreadyExists(who + " asks for rank " + std::to_string(rank) + ", held by " +
                           DescribeNode((*slots)[rank]));
    }
  } else {
    for (int r = 0; r < size && rank < 0; ++r) {
      if ((*slots)[r].rank < 0) rank = r;
    }
    if (rank < 0) {
      std::string holders;
      for (const NodeRecord& held : *slots) holders += (holders.empty() ? "" : ", ") + held.address;
      return ResourceExhausted("refused " + who + ": all " + std::to_string(size) + " " +
                               RoleName(node.role) + " ranks are taken (by " + holders + ")");
    }
  }
  NodeRecord& slot = (*slots)[rank];
  slot = node;
  slot.rank = rank;
  slot.generation = ++last_generation_;
  ++epoch_;
  return rank;
}

bool Membership::MarkLost(proto::Role role, int rank) {
  std::vector<NodeRecord>* slots = Slots(role);
  if (slots == nullptr || rank < 0 || rank >= static_cast<int>(slots->size())) return false;
  if ((*slots)[rank].rank < 0) return false;
  (*slots)[rank] = NodeRecord{};
  ++epoch_;
  return true;
}

bool Membership::complete() const {
  for (const auto* slots : {&servers_, &workers_}) {
    for (const NodeRecord& node : *slots) {
      if (node.rank < 0) return false;
    }
  }
  return true;
}

std::string Membership::CountSummary() const {
  auto count = [](const std::vector<NodeRecord>& slots) {
    int n = 0;
    for (const NodeRecord& node : slots) n += node.rank >= 0;
    return n;
  };
  return std::to_string(count(servers_)) + " of " + std::to_string(num_servers_) +
         " servers and " + std::to_string(count(workers_)) + " of " + std::to_string(num_workers_) +
         " workers registered";
}

void Membership::FillView(proto::ClusterView::Builder view) const {
  view.setEpoch(epoch_);
  view.setSpecHash(spec_hash_);
  view.setPartition(proto::Partition::JUMP_HASH);
  auto fill = [](const std::vector<NodeRecord>& slots, capnp::List<proto::NodeInfo>::Builder list) {
    for (size_t i = 0; i < slots.size(); ++i) {
      list[i].setRank(slots[i].rank);
      list[i].setAddress(slots[i].address);
      list[i].setHttpAddress(slots[i].http_address);
      list[i].setGeneration(slots[i].generation);
    }
  };
  fill(servers_, view.initServers(servers_.size()));
  fill(workers_, view.initWorkers(workers_.size()));
}

Membership::Saved Membership::Save() const {
  Saved saved{epoch_, last_generation_, {}};
  for (const auto* slots : {&servers_, &workers_}) {
    for (const NodeRecord& node : *slots) {
      if (node.rank >= 0) saved.nodes.push_back(node);
    }
  }
  return saved;
}

Status Membership::Restore(const Saved& saved) {
  std::vector<NodeRecord> servers(num_servers_), workers(num_workers_);
  for (const NodeRecord& node : saved.nodes) {
    std::vector<NodeRecord>* slots = node.role == proto::Role::SERVER   ? &servers
                                     : node.role == proto::Role::WORKER ? &workers
                                                                        : nullptr;
    if (slots == nullptr || node.rank < 0 || node.rank >= static_cast<int>(slots->size())) {
      return InvalidArgument("journal names " + DescribeNode(node) + ", which this job of " +
                             std::to_string(num_servers_) + " servers and " +
                             std::to_string(num_workers_) + " workers does not have");
    }
    (*slots)[node.rank] = node;
  }
  servers_ = std::move(servers);
  workers_ = std::move(workers);
  epoch_ = saved.epoch;
  last_generation_ = saved.last_generation;
  return Status::OK();
}

}  // namespace mtps::scheduler
