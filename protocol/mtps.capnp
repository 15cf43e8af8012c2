# Every message that mtps processes exchange. One Envelope per ZeroMQ message, its
# segments sent as frames. Bulk numbers (keys, embedding rows, gradients) travel as Data
# blobs of little-endian uint64 / float32 so that the receiver reads them in place,
# without a copy: Cap'n Proto starts every blob on a word boundary.
#
# Growing the protocol: add fields with new ordinals and new union members at the end;
# never renumber. A change a peer cannot ignore bumps protocolVersion.
@0x8127d8c8059ba371;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("mtps::proto");

const protocolVersion :UInt16 = 1;

enum Role {
  unknown @0;
  scheduler @1;
  server @2;
  worker @3;
  client @4;   # tools and tests that talk to a server without joining a cluster
}

# Values equal mtps::StatusCode (base/status.h).
enum ErrorCode {
  ok @0;
  invalidArgument @1;
  notFound @2;
  alreadyExists @3;
  failedPrecondition @4;
  outOfRange @5;
  resourceExhausted @6;
  dataLoss @7;
  unavailable @8;
  deadlineExceeded @9;
  cancelled @10;
  unimplemented @11;
  internal @12;
  versionMismatch @13;
  permissionDenied @14;
}

struct NodeId {
  role @0 :Role;
  rank @1 :Int32 = -1;   # -1 until the scheduler assigned one
}

# The outer message. A reply carries the requestId of its request.
struct Envelope {
  version @0 :UInt16;       # protocolVersion of the sender
  jobId @1 :UInt64;         # hash of the job spec; 0 when the sender has none yet
  requestId @2 :UInt64;
  sender @3 :NodeId;

  body :union {
    error @4 :Error;                     # reply: the request failed
    ack @5 :Ack;                         # reply: the request succeeded, nothing to return

    register @6 :Register;               # node -> scheduler
    registerReply @7 :RegisterReply;     # scheduler -> node, once the cluster is whole
    clusterView @8 :ClusterView;         # node -> scheduler (empty): the current view back
    heartbeat @9 :Heartbeat;             # node -> scheduler, every second
    heartbeatReply @10 :HeartbeatReply;
    barrier @11 :Barrier;                # node -> scheduler; answered when all arrived
    shutdown @12 :Shutdown;              # scheduler -> node, or operator -> node

    sparsePull @13 :SparsePull;          # worker -> server
    sparsePullReply @14 :SparsePullReply;
    sparsePush @15 :SparsePush;          # worker -> server
    sparsePushReply @16 :SparsePushReply;

    denseInit @17 :DenseInit;            # worker -> server: create blocks if absent
    densePull @18 :DensePull;
    densePullReply @19 :DenseBlocks;
    densePush @20 :DensePush;

    checkpointBegin @21 :CheckpointBegin;    # scheduler -> server
    checkpointAck @22 :CheckpointAck;        # server -> scheduler (reply to begin)
    checkpointCommit @23 :CheckpointCommit;  # scheduler -> server: manifest written

    stats @24 :StatsRequest;
    statsReply @25 :StatsReply;

    progress @26 :Progress;              # worker -> scheduler: metrics of recent steps
    echo @27 :Data;                      # ping with payload; answered with echo
  }

  # The sender's generation (RegisterReply.generation), 0 when it has none. Servers refuse
  # a worker's request of an older generation than the cluster view publishes for its rank,
  # and the scheduler one whose generation is not its rank's holder's (fencing).
  senderGeneration @28 :UInt64;
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;     # for a person: names the values that explain the failure
}

struct Ack {
  count @0 :UInt64;     # what the request affected (rows, blocks), where meaningful
}

struct Register {
  role @0 :Role;
  address @1 :Text;       # "tcp://host:port" where the node serves requests
  httpAddress @2 :Text;   # "host:port" of /healthz and /metrics
  specHash @3 :UInt64;    # JobSpec.hash; a node with another spec is refused
  requestedRank @4 :Int32 = -1;  # a restarted node asks for its old rank
  hostname @5 :Text;
  pid @6 :UInt32;
}

struct RegisterReply {
  rank @0 :Int32;
  view @1 :ClusterView;
  generation @2 :UInt64;  # this registration's; heartbeats carry it, an older one is fenced
  rejoined @3 :Bool;      # the job was already running: a replacement of a lost node
  # A rejoined worker resumes where the last committed checkpoint recorded it.
  resume @4 :Bool;
  resumeEpoch @5 :UInt32;
  resumeRecords @6 :UInt64;   # records of that epoch already trained
  resumeStep @7 :UInt64;
  # Grows with every start of the scheduler (it is journaled): a node that sees another
  # value knows the scheduler restarted and sends again what it was waiting on (barriers).
  incarnation @8 :UInt64;
  # A rejoined worker: the job's evaluation of each epoch evaluated so far, so that its
  # early-stopping record (patience, best epoch) is the one its peers keep.
  evaluations @9 :List(EpochEvaluation);
}

struct EpochEvaluation {
  epoch @0 :UInt32;
  tasks @1 :List(TaskMetric);   # loss unused
}

struct NodeInfo {
  rank @0 :Int32;
  address @1 :Text;
  httpAddress @2 :Text;
  generation @3 :UInt64;   # of the process holding the rank; older ones are fenced
}

enum Partition {
  jumpHash @0;          # key -> server = JumpConsistentHash(key, numServers)
}

struct ClusterView {
  epoch @0 :UInt64;     # grows with every change of membership
  specHash @1 :UInt64;
  servers @2 :List(NodeInfo);   # by rank; a lost node has rank -1 and no address
  workers @3 :List(NodeInfo);   # by rank
  partition @4 :Partition;
}

enum NodeState {
  starting @0;
  running @1;
  paused @2;      # waiting for a failed peer to come back
  stopping @3;
  failed @4;
}

struct Heartbeat {
  state @0 :NodeState;
  step @1 :UInt64;
  generation @2 :UInt64;  # from RegisterReply; 0 = not known (never fenced)
}

struct HeartbeatReply {
  viewEpoch @0 :UInt64;   # a node whose view is older asks for the new one
  jobState @1 :NodeState;
  reason @2 :Text;        # why, when jobState is failed (the same text the shutdown carries)
  # Nonzero: workers pause at their next step boundary for this checkpoint's consistent
  # cut (drain pushes, report their data position, wait at barrier "checkpoint-<id>").
  checkpointPause @3 :UInt64;
  incarnation @4 :UInt64;  # see RegisterReply.incarnation
  retryable @5 :Bool;      # failed, but a restart may cure it (as Shutdown.retryable)
}

struct Barrier {
  name @0 :Text;
  count @1 :UInt32;     # how many nodes must arrive; 0 = every worker and server
}

struct Shutdown {
  reason @0 :Text;
  failed @1 :Bool;      # the job failed: exit nonzero
  retryable @2 :Bool;   # failed, but a restart may cure it (a lost node, a stopped scheduler)
}

struct SparsePull {
  tableId @0 :UInt32;       # index of the table in JobSpec.tables
  keys @1 :Data;            # n little-endian uint64
  step @2 :UInt64;          # worker's step, for metadata (last seen)
  countAsSighting @3 :Bool = true;   # training pulls count toward admission; eval's do not
}

struct SparsePullReply {
  tableId @0 :UInt32;
  dim @1 :UInt32;
  values @2 :Data;          # n x dim little-endian float32, in the request's key order
}

struct SparsePush {
  tableId @0 :UInt32;
  keys @1 :Data;            # n little-endian uint64, each key at most once
  gradients @2 :Data;       # n x dim little-endian float32
  step @3 :UInt64;
  sync @4 :Bool;            # sum all workers' gradients of `step`, then apply once
  workerRank @5 :Int32;
  numWorkers @6 :UInt32;    # how many pushes make a sync step whole
  # Sync: 0 for the first send of this worker's part of `step`; k for the k-th send again
  # after the worker lost the answer (a server replaced under it). A later attempt takes
  # the place of an earlier one still waiting in the step, so a resent part counts once.
  attempt @7 :UInt32;
}

struct SparsePushReply {
  applied @0 :UInt64;       # rows updated (or buffered, in sync mode)
  dropped @1 :UInt64;       # keys not yet admitted: gradient dropped and counted
}

struct DenseBlock {
  id @0 :UInt32;
  name @1 :Text;
  values @2 :Data;          # little-endian float32
}

struct DenseInit {
  blocks @0 :List(DenseBlock);   # created with these values when absent; kept when present
}

struct DensePull {
  blockIds @0 :List(UInt32);
}

struct DenseBlocks {
  blocks @0 :List(DenseBlock);   # `name` may be empty in replies
}

struct DensePush {
  blocks @0 :List(DenseBlock);   # gradients
  step @1 :UInt64;
  sync @2 :Bool;
  workerRank @3 :Int32;
  numWorkers @4 :UInt32;
  # Async: the gradients are the sum of this many steps (training.dense_sync_every); the
  # server applies their mean as that many optimizer steps. 0 reads as 1.
  steps @5 :UInt32;
  attempt @6 :UInt32;       # as SparsePush.attempt
}

struct CheckpointBegin {
  checkpointId @0 :UInt64;
  dir @1 :Text;             # directory of this checkpoint
  step @2 :UInt64;
}

struct CheckpointFile {
  path @0 :Text;
  bytes @1 :UInt64;
  checksum @2 :UInt64;
  baseId @3 :UInt64;        # 0: a whole file; else an increment over the same file of checkpoint baseId
}

struct CheckpointAck {
  checkpointId @0 :UInt64;
  serverRank @1 :Int32;
  files @2 :List(CheckpointFile);
}

struct CheckpointCommit {
  checkpointId @0 :UInt64;
}

struct StatsRequest {
  tableIds @0 :List(UInt32);   # empty = every table
}

struct TableStats {
  tableId @0 :UInt32;
  name @1 :Text;
  rows @2 :UInt64;
  bytes @3 :UInt64;
  admitted @4 :UInt64;
  evicted @5 :UInt64;
  expired @6 :UInt64;
  droppedPushes @7 :UInt64;
  rejectedRequests @8 :UInt64;
}

struct StatsReply {
  tables @0 :List(TableStats);
  denseBlocks @1 :UInt32;
  requests @2 :UInt64;
}

struct TaskMetric {
  name @0 :Text;
  loss @1 :Float64;
  auc @2 :Float64;          # NaN when not measured
  logloss @3 :Float64;
  mse @4 :Float64;
}

struct Progress {
  step @0 :UInt64;
  samples @1 :UInt64;       # since the job began, this worker
  samplesPerSec @2 :Float64;
  tasks @3 :List(TaskMetric);
  phase @4 :Text;           # "train", "eval", "done", "failed"
  epoch @5 :UInt32;
  dataPosition @6 :UInt64;  # records consumed in this epoch, for resumption
  trainSeconds @7 :Float64; # seconds spent training (not evaluating) since the job began
  badRecords @8 :UInt64;    # input records skipped as bad since the job began, this worker
  reason @9 :Text;          # phase "failed": why the worker gives up (the job fails)
  # A "train" report with epochEnd closes this worker's `epoch`: its tasks' loss is the
  # epoch's mean training loss, and the two counts below are that epoch's alone.
  epochEnd @10 :Bool;
  epochSamples @11 :UInt64;   # with epochEnd: samples this worker trained in `epoch`
  epochSeconds @12 :Float64;  # with epochEnd: seconds this worker trained in `epoch`
  epochRecords @13 :UInt64;   # records in one epoch of the whole training split (an ETA's size); 0: unknown
  # Phase "eval": this epoch is the best so far by training.early_stopping's metric. The
  # scheduler then checkpoints the model as it is at the epoch's end and keeps that one.
  bestSoFar @14 :Bool;
}
