// Membership: who is in the cluster. Turns registrations into ranks (servers and workers
// each numbered from 0), refuses nodes with another job spec, and fills the cluster view.
//
//   Membership members(/*num_servers=*/2, /*num_workers=*/2, spec.hash);
//   StatusOr<int> rank = members.Register({proto::Role::SERVER, "tcp://10.0.0.5:7001", ...});
//   if (members.complete()) members.FillView(reply.initView());
//
// Pure bookkeeping (no network, no clock), so it is tested directly.
// Thread-safety: none; the scheduler calls it under its own mutex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/mtps.capnp.h"
#include "base/status.h"
#include "protocol/transport.h"  // RoleName

namespace mtps::scheduler {

struct NodeRecord {
  proto::Role role = proto::Role::UNKNOWN;
  int rank = -1;
  std::string address;       // where the node serves requests
  std::string http_address;  // its /healthz and /metrics
  std::string hostname;
  uint32_t pid = 0;
  uint64_t spec_hash = 0;
  int requested_rank = -1;
  uint64_t generation = 0;   // set by Register(): grows with every registration
  // With CURVE: the allow-list name of the key that registered this node. Only that key
  // may speak for (role, rank) or take the rank over; empty when insecure.
  std::string identity;
};

// "0x0123456789abcdef": how spec hashes are written in every message.
std::string FormatSpecHash(uint64_t hash);
// "server 1 (tcp://127.0.0.1:7001)".
std::string DescribeNode(const NodeRecord& node);

class Membership {
 public:
  Membership(int num_servers, int num_workers, uint64_t spec_hash);

  // The node's rank. A node already registered under the same role and address (a
  // retried request) gets its rank again. Refused: a role other than server or worker
  // (INVALID_ARGUMENT), another spec hash (FAILED_PRECONDITION naming both hashes), no
  // free rank of that role or a requested rank that is out of range or taken
  // (RESOURCE_EXHAUSTED / ALREADY_EXISTS naming the holder).
  StatusOr<int> Register(const NodeRecord& node);
  // Empties the slot of a node declared lost (its rank is free for a replacement that
  // asks for it or for any free rank) and changes the view. False when it was empty.
  bool MarkLost(proto::Role role, int rank);

  bool complete() const;
  int num_servers() const { return num_servers_; }
  int num_workers() const { return num_workers_; }
  uint64_t spec_hash() const { return spec_hash_; }
  uint64_t epoch() const { return epoch_; }
  // Registered nodes of a role, indexed by rank (an unfilled rank has rank -1).
  const std::vector<NodeRecord>& nodes(proto::Role role) const;
  const NodeRecord* Find(proto::Role role, int rank) const;
  // "1 of 2 servers and 0 of 2 workers registered".
  std::string CountSummary() const;

  void FillView(proto::ClusterView::Builder view) const;

  // What the scheduler's journal keeps of the membership: the counters and every filled
  // slot. Restore() puts it back after a restart (INVALID_ARGUMENT for a node whose role
  // or rank this job does not have).
  struct Saved {
    uint64_t epoch = 0;
    uint64_t last_generation = 0;
    std::vector<NodeRecord> nodes;
  };
  Saved Save() const;
  Status Restore(const Saved& saved);

 private:
  std::vector<NodeRecord>* Slots(proto::Role role);

  const int num_servers_;
  const int num_workers_;
  const uint64_t spec_hash_;
  uint64_t epoch_ = 0;
  uint64_t last_generation_ = 0;
  std::vector<NodeRecord> servers_;
  std::vector<NodeRecord> workers_;
};

}  // namespace mtps::scheduler
