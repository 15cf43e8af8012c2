// AuthorizeRequest: the table of which key roles may send which request kinds.
#include "protocol/authority.h"

#include <string>

#include "protocol/transport.h"

namespace mtps {
namespace {

using Kind = proto::Envelope::Body;
using proto::Role;

// The key roles allowed to send `kind`, as a bit set over proto::Role.
unsigned AllowedRoles(Kind::Which kind) {
  auto bit = [](Role r) { return 1u << static_cast<unsigned>(r); };
  const unsigned nodes = bit(Role::SERVER) | bit(Role::WORKER);
  switch (kind) {
    case Kind::SHUTDOWN:
    case Kind::CHECKPOINT_BEGIN:
    case Kind::CHECKPOINT_COMMIT:
      return bit(Role::SCHEDULER);
    case Kind::REGISTER:
    case Kind::HEARTBEAT:
    case Kind::BARRIER:
    case Kind::CLUSTER_VIEW:
      return nodes;
    case Kind::PROGRESS:
    case Kind::SPARSE_PULL:
    case Kind::SPARSE_PUSH:
    case Kind::DENSE_INIT:
    case Kind::DENSE_PULL:
    case Kind::DENSE_PUSH:
      return bit(Role::WORKER);
    case Kind::STATS:
    case Kind::ECHO:
      return bit(Role::SCHEDULER) | nodes | bit(Role::CLIENT);
    default:
      return 0;  // replies and kinds unknown here
  }
}

}  // namespace

Status AuthorizeRequest(const KeyHolder& peer, proto::Envelope::Reader envelope) {
  const Kind::Which kind = envelope.getBody().which();
  const Role claimed = envelope.getSender().getRole();
  if (claimed != peer.role) {
    return PermissionDenied("key '" + peer.name + "' (a " + RoleName(peer.role) +
                            " key) sent a " + BodyKindName(kind) + " request claiming to be a " +
                            RoleName(claimed));
  }
  if ((AllowedRoles(kind) & (1u << static_cast<unsigned>(peer.role))) == 0) {
    return PermissionDenied(RoleName(peer.role) + " key '" + peer.name + "' may not send " +
                            BodyKindName(kind) + " requests");
  }
  if (kind == Kind::REGISTER && envelope.getBody().getRegister().getRole() != peer.role) {
    return PermissionDenied("key '" + peer.name + "' (a " + RoleName(peer.role) +
                            " key) may not register as a " +
                            RoleName(envelope.getBody().getRegister().getRole()));
  }
  return Status::OK();
}

}  // namespace mtps
