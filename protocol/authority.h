// Who may send which request, judged from the authenticated CURVE identity of the peer
// (its key holder in the job's allow-list), never from what the message claims.
//
//   Status s = AuthorizeRequest(*holder, request.envelope());   // in RpcServer, per request
//
// The rules (every request kind, on every listening socket of a job):
// - the envelope's sender role must be the role of the key that sent it (no forged roles);
// - orders — shutdown, checkpointBegin, checkpointCommit — come only from the scheduler key;
// - a node's own business with the scheduler — register, heartbeat, barrier, clusterView —
//   from server and worker keys, and the role a node registers as is its key's role;
//   progress (which can end or fail a job) only from worker keys;
// - data — sparse and dense pulls and pushes, denseInit — only from worker keys;
// - stats and echo from any key of the job (client keys are for such tools);
// - replies (ack, error, ...) are never requests: refused.
// Which rank a key holds is the scheduler's to check (it binds a rank to the key that
// registered it); a refusal names the key holder and the kind, nothing else.
#pragma once

#include "protocol/curve_keys.h"
#include "protocol/mtps.capnp.h"
#include "base/status.h"

namespace mtps {

Status AuthorizeRequest(const KeyHolder& peer, proto::Envelope::Reader envelope);

}  // namespace mtps
