// ps::Server: validates each parameter-server request, hands it to the shard threads or
// the dense store, and answers when every part is done, with metrics per request kind.
#include "ps/server.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <unordered_set>
#include <utility>

#include <glog/logging.h>

#include "base/checkpoint_manifest.h"
#include "ps/jump_hash.h"
#include "ps/sync_step_gate.h"

namespace mtps::ps {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = proto::Envelope::Body::Which;

// Request kinds served, for per-kind metrics.
enum RequestKind {
  kSparsePull,
  kSparsePush,
  kDenseInit,
  kDensePull,
  kDensePush,
  kCheckpointBegin,
  kCheckpointCommit,
  kStats,
  kNumKinds
};
constexpr const char* kKindLabels[kNumKinds] = {
    "sparse_pull", "sparse_push",       "dense_init",        "dense_pull",
    "dense_push",  "checkpoint_begin", "checkpoint_commit", "stats"};

// Views a Data blob as an array of T in place (Cap'n Proto starts blobs on a word
// boundary and the transport realigns frames that are not).
template <typename T>
StatusOr<std::span<const T>> BlobAs(capnp::Data::Reader blob, const char* what) {
  if (blob.size() % sizeof(T) != 0)
    return InvalidArgument(std::string(what) + " blob of " + std::to_string(blob.size()) +
                           " bytes is not a whole number of " + std::to_string(sizeof(T)) +
                           "-byte values");
  if (reinterpret_cast<uintptr_t>(blob.begin()) % alignof(T) != 0)
    return InvalidArgument(std::string(what) + " blob is not aligned to " +
                           std::to_string(alignof(T)) + " bytes");
  return std::span<const T>(reinterpret_cast<const T*>(blob.begin()), blob.size() / sizeof(T));
}

}  // namespace

struct Server::Metrics {
  std::unique_ptr<MetricsRegistry> own_registry;  // when the caller gave none
  Counter* requests[kNumKinds];
  Counter* rejected[kNumKinds];
  Histogram* latency[kNumKinds];
};

// One request being served: owns the received frames (keys and gradients are read from
// them in place), the right to answer, and the reply being filled by the shards. Its
// Responder reports the answer to the dispatch (RegisterHandlers), which times it.
struct InFlightRequest {
  InFlightRequest(IncomingMessage r, Responder s)
      : request(std::move(r)), responder(std::move(s)) {}

  void Finish(const Status& status) {
    if (status.ok()) {
      responder.Send(std::move(reply));
    } else {
      responder.SendError(status);
    }
  }

  IncomingMessage request;
  Responder responder;
  std::unique_ptr<OutgoingMessage> reply;
};

Server::Server(const JobSpec& job, const ServerOptions& options,
               std::unique_ptr<ShardedTables> tables, MetricsRegistry* registry)
    : job_(job),
      options_(options),
      memory_budget_(options.memory_budget_bytes),
      tables_(std::move(tables)),
      dense_(std::make_unique<DenseBlockStore>(job.training.dense_optimizer)),
      fs_(options.env.fs),
      metrics_(std::make_unique<Metrics>()),
      table_rejected_(new std::atomic<uint64_t>[job.tables.size()]) {
  for (size_t t = 0; t < job.tables.size(); ++t) table_rejected_[t].store(0);
  if (registry == nullptr) {
    metrics_->own_registry = std::make_unique<MetricsRegistry>();
    registry = metrics_->own_registry.get();
  }
  for (int k = 0; k < kNumKinds; ++k) {
    const MetricLabels labels = {{"kind", kKindLabels[k]}};
    metrics_->requests[k] =
        registry->AddCounter("mtps_ps_requests_total", "Requests received, by kind.", labels);
    metrics_->rejected[k] = registry->AddCounter(
        "mtps_ps_rejected_requests_total", "Requests answered with an error, by kind.", labels);
    metrics_->latency[k] = registry->AddHistogram(
        "mtps_ps_request_seconds", "Time from a request's arrival to its reply, by kind.",
        LatencyBuckets(), labels);
  }
  struct TableGauge {
    const char* name;
    const char* help;
    uint64_t TableCounters::*field;
  };
  const TableGauge gauges[] = {
      {"mtps_ps_table_rows", "Rows held.", &TableCounters::rows},
      {"mtps_ps_table_bytes", "Bytes held by rows, index and sketch.", &TableCounters::bytes},
      {"mtps_ps_table_admitted_total", "Rows created.", &TableCounters::admitted},
      {"mtps_ps_table_evicted_total", "Rows evicted to stay under capacity.",
       &TableCounters::evicted},
      {"mtps_ps_table_expired_total", "Rows removed after idling past ttl_steps.",
       &TableCounters::expired},
      {"mtps_ps_table_dropped_pushes_total", "Gradients dropped for keys not yet admitted.",
       &TableCounters::dropped_pushes},
      {"mtps_ps_table_rejected_pushes_total", "Pushes refused for non-finite gradients.",
       &TableCounters::rejected_requests},
      {"mtps_ps_table_budget_refused_rows_total",
       "New rows not created because the server's memory budget was spent.",
       &TableCounters::budget_refused},
  };
  tables_->set_memory_budget(&memory_budget_);
  ShardedTables* sharded = tables_.get();
  for (size_t t = 0; t < job.tables.size(); ++t) {
    const MetricLabels labels = {{"table", job.tables[t].name}};
    for (const TableGauge& g : gauges) {
      auto read = [sharded, t, field = g.field] {
        StatusOr<TableCounters> c = sharded->Counters(static_cast<uint32_t>(t));
        return c.ok() ? static_cast<double>((*c).*field) : 0.0;
      };
      // Counts that only grow (the *_total ones) are counters; sizes are gauges.
      if (std::string_view(g.name).ends_with("_total")) {
        registry->AddCounterFunction(g.name, g.help, labels, std::move(read));
      } else {
        registry->AddGaugeFunction(g.name, g.help, labels, std::move(read));
      }
    }
  }
  const MemoryBudget* budget = &memory_budget_;
  registry->AddGaugeFunction("mtps_ps_memory_budget_bytes",
                             "Bytes all tables may hold together (0 = no limit).", {},
                             [budget] { return static_cast<double>(budget->limit()); });
  registry->AddGaugeFunction("mtps_ps_memory_used_bytes",
                             "Bytes all tables hold: slabs, indexes and sketches.", {},
                             [budget] { return static_cast<double>(budget->used()); });
  DenseBlockStore* dense = dense_.get();
  registry->AddGaugeFunction("mtps_ps_dense_blocks", "Dense blocks held.", {},
                             [dense] { return static_cast<double>(dense->num_blocks()); });
}

Server::~Server() {
  // Answers still owed (sync steps cancelled at shutdown) report to metrics_ and rejected_.
  tables_.reset();
  dense_.reset();
}

StatusOr<std::unique_ptr<Server>> Server::Create(const JobSpec& job, const ServerOptions& options,
                                                 MetricsRegistry* metrics) {
  if (options.num_servers < 1 || options.rank < 0 || options.rank >= options.num_servers)
    return InvalidArgument("server rank " + std::to_string(options.rank) + " is outside [0, " +
                           std::to_string(options.num_servers) + ")");
  MTPS_ASSIGN_OR_RETURN(auto tables, ShardedTables::Create(job.tables, options.shards));
  tables->set_max_gradient_abs(job.training.max_gradient_abs);
  return std::unique_ptr<Server>(new Server(job, options, std::move(tables), metrics));
}

void Server::RegisterHandlers(RpcServer& rpc) {
  // The one instrumented dispatch: every request is counted by kind here, and its answer,
  // sent now or later from whichever thread, is timed and (an error) counted as it goes.
  auto bind = [this](RequestKind kind, void (Server::*handler)(IncomingMessage&, Responder)) {
    return [this, kind, handler](IncomingMessage& request, Responder responder) {
      metrics_->requests[kind]->Increment();
      requests_.fetch_add(1, std::memory_order_relaxed);
      responder.OnAnswer([this, kind, start = Clock::now()](bool is_error) {
        if (is_error) {
          metrics_->rejected[kind]->Increment();
          rejected_.fetch_add(1, std::memory_order_relaxed);
        }
        metrics_->latency[kind]->Observe(
            std::chrono::duration<double>(Clock::now() - start).count());
      });
      (this->*handler)(request, std::move(responder));
    };
  };
  // Sparse requests are checked and handed to the shard threads, which answer: they never
  // block, so they run on the transport's I/O thread and skip two thread hand-offs.
  rpc.Handle(Kind::SPARSE_PULL, bind(kSparsePull, &Server::HandleSparsePull), RpcServer::Dispatch::kIoThread);
  rpc.Handle(Kind::SPARSE_PUSH, bind(kSparsePush, &Server::HandleSparsePush), RpcServer::Dispatch::kIoThread);
  rpc.Handle(Kind::DENSE_INIT, bind(kDenseInit, &Server::HandleDenseInit));
  rpc.Handle(Kind::DENSE_PULL, bind(kDensePull, &Server::HandleDensePull));
  rpc.Handle(Kind::DENSE_PUSH, bind(kDensePush, &Server::HandleDensePush));
  rpc.Handle(Kind::CHECKPOINT_BEGIN, bind(kCheckpointBegin, &Server::HandleCheckpointBegin));
  rpc.Handle(Kind::CHECKPOINT_COMMIT, bind(kCheckpointCommit, &Server::HandleCheckpointCommit));
  rpc.Handle(Kind::STATS, bind(kStats, &Server::HandleStats));
}

uint64_t Server::rejected_requests() const { return rejected_.load(std::memory_order_relaxed); }

void Server::CancelPendingSyncSteps(const Status& reason) {
  tables_->CancelPendingSyncSteps(reason);
  dense_->CancelPendingSyncSteps(reason);
}

// ---- validation ----

StatusOr<const TableSpec*> Server::CheckTable(uint32_t table_id) const {
  if (table_id >= tables_->num_tables())
    return NotFound("table " + std::to_string(table_id) + " does not exist: this server holds " +
                    std::to_string(tables_->num_tables()) + " tables (ids 0.." +
                    std::to_string(static_cast<int64_t>(tables_->num_tables()) - 1) + ")");
  return tables_->Spec(table_id);
}

Status Server::CheckOwnedKeys(const uint64_t* keys, size_t n) const {
  if (options_.num_servers == 1) return Status::OK();
  for (size_t i = 0; i < n; ++i) {
    const int32_t owner = JumpConsistentHash(keys[i], options_.num_servers);
    if (owner != options_.rank)
      return FailedPrecondition("key " + std::to_string(keys[i]) + " (position " +
                                std::to_string(i) + ") belongs to server " +
                                std::to_string(owner) + ", not to this server " +
                                std::to_string(options_.rank) + " of " +
                                std::to_string(options_.num_servers));
  }
  return Status::OK();
}

Status Server::CheckOwnedBlock(uint32_t block_id) const {
  const int32_t owner = DenseBlockOwner(block_id, options_.num_servers);
  if (owner == options_.rank) return Status::OK();
  return FailedPrecondition("dense block " + std::to_string(block_id) + " belongs to server " +
                            std::to_string(owner) + ", not to this server " +
                            std::to_string(options_.rank) + " of " +
                            std::to_string(options_.num_servers));
}

Status Server::CheckSyncPush(uint64_t step, int32_t worker_rank, uint32_t num_workers) const {
  const std::string what = "sync push of step " + std::to_string(step) + " from worker " +
                           std::to_string(worker_rank);
  if (options_.num_workers > 0 && num_workers != static_cast<uint32_t>(options_.num_workers))
    return InvalidArgument(what + " says numWorkers " + std::to_string(num_workers) +
                           "; the cluster has " + std::to_string(options_.num_workers));
  if (num_workers == 0 || num_workers > static_cast<uint32_t>(kMaxSyncWorkers))
    return InvalidArgument(what + " says numWorkers " + std::to_string(num_workers) +
                           "; a server outside a cluster takes 1.." +
                           std::to_string(kMaxSyncWorkers));
  if (worker_rank < 0 || static_cast<uint32_t>(worker_rank) >= num_workers)
    return InvalidArgument(what + ": the rank is outside [0, " + std::to_string(num_workers) +
                           ")");
  return Status::OK();
}

Status Server::CheckReplyBytes(size_t bytes, const std::string& what) const {
  const size_t limit = std::min(options_.max_reply_bytes, kMaxDataFieldBytes);
  if (bytes <= limit) return Status::OK();
  return ResourceExhausted(what + " needs a reply of " + std::to_string(bytes) +
                           " bytes, over this server's limit of " + std::to_string(limit) +
                           "; split the request (ps::Client does)");
}

void Server::Refuse(Responder& responder, int kind, const Status& status, int64_t table_id) {
  if (table_id >= 0 && static_cast<size_t>(table_id) < job_.tables.size())
    table_rejected_[table_id].fetch_add(1, std::memory_order_relaxed);
  VLOG(1) << "refused " << kKindLabels[kind] << ": " << status;
  responder.SendError(status);
}

// ---- sparse ----

void Server::HandleSparsePull(IncomingMessage& request, Responder responder) {
  auto pull = request.envelope().getBody().getSparsePull();
  const uint32_t table_id = pull.getTableId();
  StatusOr<const TableSpec*> spec = CheckTable(table_id);
  if (!spec.ok()) return Refuse(responder, kSparsePull, spec.status());
  StatusOr<std::span<const uint64_t>> keys = BlobAs<uint64_t>(pull.getKeys(), "keys");
  if (!keys.ok()) return Refuse(responder, kSparsePull, keys.status(), table_id);
  if (Status s = CheckOwnedKeys(keys->data(), keys->size()); !s.ok())
    return Refuse(responder, kSparsePull, s, table_id);

  const int dim = (*spec)->dim;
  const size_t n = keys->size();
  if (Status s = CheckReplyBytes(n * dim * sizeof(float),
                                 "a pull of " + std::to_string(n) + " keys of table " +
                                     std::to_string(table_id) + " (dim " + std::to_string(dim) +
                                     ")");
      !s.ok())
    return Refuse(responder, kSparsePull, s, table_id);
  auto op = std::make_shared<InFlightRequest>(
      std::move(request), std::move(responder));
  op->reply = op->responder.NewReply();
  auto answer = op->reply->body().initSparsePullReply();
  answer.setTableId(table_id);
  answer.setDim(static_cast<uint32_t>(dim));
  // The shard threads write the rows straight into the reply's payload: pooled memory,
  // not zeroed first, sent without a copy.
  OutgoingMessage::Payload values = op->reply->NewPayload(n * dim * sizeof(float));
  answer.adoptValues(kj::mv(values.orphan));
  float* out = reinterpret_cast<float*>(values.data);
  if (n == 0) return op->Finish(Status::OK());
  tables_->PullAsync(table_id, keys->data(), n, out, pull.getStep(), pull.getCountAsSighting(),
                     [op](Status status) { op->Finish(status); });
}

void Server::HandleSparsePush(IncomingMessage& request, Responder responder) {
  auto push = request.envelope().getBody().getSparsePush();
  const uint32_t table_id = push.getTableId();
  StatusOr<const TableSpec*> spec = CheckTable(table_id);
  if (!spec.ok()) return Refuse(responder, kSparsePush, spec.status());
  StatusOr<std::span<const uint64_t>> keys = BlobAs<uint64_t>(push.getKeys(), "keys");
  if (!keys.ok()) return Refuse(responder, kSparsePush, keys.status(), table_id);
  StatusOr<std::span<const float>> grads = BlobAs<float>(push.getGradients(), "gradients");
  if (!grads.ok()) return Refuse(responder, kSparsePush, grads.status(), table_id);
  const size_t n = keys->size();
  const size_t dim = static_cast<size_t>((*spec)->dim);
  if (grads->size() != n * dim)
    return Refuse(responder, kSparsePush,
                  InvalidArgument("table " + std::to_string(table_id) + " ('" + (*spec)->name +
                                  "') has dim " + std::to_string(dim) + ": " +
                                  std::to_string(n) + " keys need " + std::to_string(n * dim) +
                                  " gradient floats, got " + std::to_string(grads->size())),
                  table_id);
  if (Status s = CheckOwnedKeys(keys->data(), n); !s.ok())
    return Refuse(responder, kSparsePush, s, table_id);
  const bool sync = push.getSync();
  const uint32_t num_workers = push.getNumWorkers();
  if (sync) {
    if (Status s = CheckSyncPush(push.getStep(), push.getWorkerRank(), num_workers); !s.ok())
      return Refuse(responder, kSparsePush, s, table_id);
  }

  auto op = std::make_shared<InFlightRequest>(
      std::move(request), std::move(responder));
  auto done = [op](StatusOr<PushResult> result) {
    if (!result.ok()) return op->Finish(result.status());
    op->reply = op->responder.NewReply();
    auto answer = op->reply->body().initSparsePushReply();
    answer.setApplied(result->applied);
    answer.setDropped(result->dropped);
    op->Finish(Status::OK());
  };
  if (sync) {
    const uint64_t generation = SyncPartOrder(op->request.envelope().getSenderGeneration(), push.getAttempt());
    tables_->PushSyncAsync(table_id, keys->data(), grads->data(), n, push.getStep(),
                           push.getWorkerRank(), static_cast<int>(num_workers), std::move(done),
                           generation);
  } else {
    tables_->PushAsync(table_id, keys->data(), grads->data(), n, push.getStep(), std::move(done));
  }
}

// ---- dense ----

namespace {

// Refuses a list of blocks that names one id twice: the second would apply twice.
template <typename List, typename IdOf>
Status CheckDistinctIds(const List& list, IdOf id_of) {
  std::unordered_set<uint32_t> seen;
  for (auto item : list) {
    if (!seen.insert(id_of(item)).second)
      return InvalidArgument("dense block " + std::to_string(id_of(item)) +
                             " is listed twice in one request");
  }
  return Status::OK();
}

}  // namespace

void Server::HandleDenseInit(IncomingMessage& request, Responder responder) {
  auto blocks = request.envelope().getBody().getDenseInit().getBlocks();
  auto id_of = [](proto::DenseBlock::Reader b) { return b.getId(); };
  if (Status s = CheckDistinctIds(blocks, id_of); !s.ok())
    return Refuse(responder, kDenseInit, s);
  // Everything is checked before the first block is created.
  for (auto block : blocks) {
    const uint32_t id = block.getId();
    if (Status s = CheckOwnedBlock(id); !s.ok()) return Refuse(responder, kDenseInit, s);
    auto values = BlobAs<float>(block.getValues(), "dense block values");
    if (!values.ok())
      return Refuse(responder, kDenseInit,
                    values.status().WithContext("dense block " + std::to_string(id)));
    const std::string what = "initial value of dense block " + std::to_string(id);
    if (Status s = ValidateFinite(values->data(), values->size(), what.c_str()); !s.ok())
      return Refuse(responder, kDenseInit, s);
    StatusOr<size_t> existing = dense_->Size(id);
    if (existing.ok() && *existing != values->size())
      return Refuse(responder, kDenseInit,
                    InvalidArgument("dense block " + std::to_string(id) + " exists with " +
                                    std::to_string(*existing) + " floats; init sent " +
                                    std::to_string(values->size())));
  }
  for (auto block : blocks) {
    auto values = *BlobAs<float>(block.getValues(), "dense block values");
    if (Status s = dense_->Init(block.getId(), block.getName().cStr(), values.data(),
                                values.size());
        !s.ok())
      return Refuse(responder, kDenseInit, s);
  }
  responder.SendAck(blocks.size());
}

void Server::HandleDensePull(IncomingMessage& request, Responder responder) {
  auto ids = request.envelope().getBody().getDensePull().getBlockIds();
  // A block named twice would be sent twice: a small request must not buy a huge reply.
  if (Status s = CheckDistinctIds(ids, [](uint32_t id) { return id; }); !s.ok())
    return Refuse(responder, kDensePull, s);
  std::vector<size_t> sizes;
  sizes.reserve(ids.size());
  size_t reply_bytes = 0;
  for (uint32_t id : ids) {
    if (Status s = CheckOwnedBlock(id); !s.ok()) return Refuse(responder, kDensePull, s);
    StatusOr<size_t> size = dense_->Size(id);
    if (!size.ok()) return Refuse(responder, kDensePull, size.status());
    sizes.push_back(*size);
    reply_bytes += *size * sizeof(float);
  }
  if (Status s = CheckReplyBytes(reply_bytes,
                                 "a dense pull of " + std::to_string(ids.size()) + " blocks");
      !s.ok())
    return Refuse(responder, kDensePull, s);
  auto reply = responder.NewReply();
  auto out = reply->body().initDensePullReply().initBlocks(ids.size());
  for (size_t j = 0; j < ids.size(); ++j) {
    out[j].setId(ids[j]);
    auto values = out[j].initValues(sizes[j] * sizeof(float));
    if (Status s = dense_->Pull(ids[j], reinterpret_cast<float*>(values.begin()), sizes[j]);
        !s.ok())
      return Refuse(responder, kDensePull, s);
  }
  responder.Send(std::move(reply));
}

void Server::HandleDensePush(IncomingMessage& request, Responder responder) {
  auto push = request.envelope().getBody().getDensePush();
  auto blocks = push.getBlocks();
  auto id_of = [](proto::DenseBlock::Reader b) { return b.getId(); };
  if (Status s = CheckDistinctIds(blocks, id_of); !s.ok())
    return Refuse(responder, kDensePush, s);
  for (auto block : blocks) {
    const uint32_t id = block.getId();
    if (Status s = CheckOwnedBlock(id); !s.ok()) return Refuse(responder, kDensePush, s);
    StatusOr<size_t> size = dense_->Size(id);
    if (!size.ok()) return Refuse(responder, kDensePush, size.status());
    auto grads = BlobAs<float>(block.getValues(), "dense gradients");
    if (!grads.ok())
      return Refuse(responder, kDensePush,
                    grads.status().WithContext("dense block " + std::to_string(id)));
    if (grads->size() != *size)
      return Refuse(responder, kDensePush,
                    InvalidArgument("dense block " + std::to_string(id) + " holds " +
                                    std::to_string(*size) + " floats, the push sent " +
                                    std::to_string(grads->size()) + " gradients"));
    const std::string what = "gradient of dense block " + std::to_string(id);
    if (Status s = ValidateFinite(grads->data(), grads->size(), what.c_str(),
                                  job_.training.max_gradient_abs);
        !s.ok())
      return Refuse(responder, kDensePush, s);
  }
  const bool sync = push.getSync();
  const uint32_t num_workers = push.getNumWorkers();
  if (sync) {
    if (Status s = CheckSyncPush(push.getStep(), push.getWorkerRank(), num_workers); !s.ok())
      return Refuse(responder, kDensePush, s.WithContext("dense"));
  }
  const uint64_t count = blocks.size();
  if (!sync) {
    for (auto block : blocks) {
      auto grads = *BlobAs<float>(block.getValues(), "dense gradients");
      if (Status s = dense_->Push(block.getId(), grads.data(), grads.size(), push.getSteps()); !s.ok())
        return Refuse(responder, kDensePush, s);
    }
    responder.SendAck(count);
    return;
  }

  // Sync: the reply waits until every block's step is complete (all workers pushed).
  struct SyncPush {
    std::shared_ptr<InFlightRequest> op;
    std::atomic<size_t> remaining;
    std::mutex mutex;
    Status error;
  };
  auto state = std::make_shared<SyncPush>();
  state->op = std::make_shared<InFlightRequest>(
      std::move(request), std::move(responder));
  state->remaining = count;
  if (count == 0) {
    state->op->reply = state->op->responder.NewReply();
    state->op->reply->body().initAck().setCount(0);
    return state->op->Finish(Status::OK());
  }
  // `blocks` reads from the request now owned by state->op: still valid.
  const uint64_t generation =
      SyncPartOrder(state->op->request.envelope().getSenderGeneration(), push.getAttempt());
  for (auto block : blocks) {
    auto grads = *BlobAs<float>(block.getValues(), "dense gradients");
    dense_->PushSync(block.getId(), grads.data(), grads.size(), push.getStep(),
                     push.getWorkerRank(), static_cast<int>(num_workers),
                     [state, count](Status status) {
                       if (!status.ok()) {
                         std::lock_guard<std::mutex> lock(state->mutex);
                         if (state->error.ok()) state->error = status;
                       }
                       if (state->remaining.fetch_sub(1) != 1) return;
                       Status error;
                       {
                         std::lock_guard<std::mutex> lock(state->mutex);
                         error = state->error;
                       }
                       if (error.ok()) {
                         state->op->reply = state->op->responder.NewReply();
                         state->op->reply->body().initAck().setCount(count);
                       }
                       state->op->Finish(error);
                     },
                     generation);
  }
}

// ---- checkpoints ----

void Server::HandleCheckpointBegin(IncomingMessage& request, Responder responder) {
  auto begin = request.envelope().getBody().getCheckpointBegin();
  const uint64_t id = begin.getCheckpointId();
  if (options_.checkpoint_root.empty())
    return Refuse(responder, kCheckpointBegin,
                  FailedPrecondition("checkpoint " + std::to_string(id) +
                                     ": this server has no checkpoint root (--checkpoint_dir "
                                     "or the job spec's checkpoint.dir)"));
  // The id alone picks the place, under this server's own root: `begin.dir` is ignored.
  const std::string dir = CheckpointDir(options_.checkpoint_root, id);
  std::lock_guard<std::mutex> lock(checkpoint_mutex_);
  PendingCheckpoint pending{dir, begin.getStep(), {}};
  Status status = fs_->CreateDirs(dir);
  // Increments build on the previous checkpoint only when it was committed here; whatever
  // happens below, the tables' change tracking restarts from this one.
  const uint64_t base = last_committed_ == last_written_ ? last_written_ : 0;
  last_written_ = id;
  increments_in_chain_.resize(tables_->num_tables(), 0);
  int increments = 0;
  for (uint32_t t = 0; status.ok() && t < tables_->num_tables(); ++t) {
    const std::string path = TableCheckpointPath(dir, options_.rank, job_.tables[t].name);
    std::optional<StatusOr<CheckpointFileInfo>> info;
    if (base != 0 && increments_in_chain_[t] + 1 < job_.checkpoint.full_every) {
      info = SaveTableIncrement(*fs_, path, *tables_, t, id, base);
      if (info->ok()) {
        ++increments_in_chain_[t];
        ++increments;
      } else if (info->status().code() == StatusCode::kFailedPrecondition) {
        LOG(INFO) << "checkpoint " << id << ": " << info->status().message()
                  << "; writing it whole";
        info.reset();
      }
    }
    if (!info) {
      info = SaveTableCheckpoint(*fs_, path, *tables_, t);
      increments_in_chain_[t] = 0;
    }
    if (info->ok()) pending.files.push_back(**info);
    status = info->status();
  }
  if (status.ok()) {
    StatusOr<CheckpointFileInfo> info =
        SaveDenseCheckpoint(*fs_, DenseCheckpointPath(dir, options_.rank), *dense_);
    if (info.ok()) pending.files.push_back(*info);
    status = info.status();
  }
  if (!status.ok())
    return Refuse(responder, kCheckpointBegin,
                  status.WithContext("checkpoint " + std::to_string(id)));
  auto reply = responder.NewReply();
  auto ack = reply->body().initCheckpointAck();
  ack.setCheckpointId(id);
  ack.setServerRank(options_.rank);
  auto files = ack.initFiles(pending.files.size());
  for (size_t i = 0; i < pending.files.size(); ++i) {
    files[i].setPath(pending.files[i].path);
    files[i].setBytes(pending.files[i].bytes);
    files[i].setChecksum(pending.files[i].checksum);
    files[i].setBaseId(pending.files[i].base_id);
  }
  pending_checkpoints_[id] = std::move(pending);
  responder.Send(std::move(reply));
  LOG(INFO) << "checkpoint " << id << " written to " << dir << " ("
            << (increments == 0 ? std::string("whole")
                                : std::to_string(increments) + " of " +
                                      std::to_string(tables_->num_tables()) +
                                      " tables incremental over checkpoint " + std::to_string(base))
            << ")";
}

void Server::HandleCheckpointCommit(IncomingMessage& request, Responder responder) {
  const uint64_t id = request.envelope().getBody().getCheckpointCommit().getCheckpointId();
  std::lock_guard<std::mutex> lock(checkpoint_mutex_);
  auto it = pending_checkpoints_.find(id);
  if (it == pending_checkpoints_.end())
    return Refuse(responder, kCheckpointCommit,
                  NotFound("checkpoint " + std::to_string(id) + " was not begun on server " +
                           std::to_string(options_.rank) + " (" +
                           std::to_string(pending_checkpoints_.size()) + " pending)"));
  if (options_.write_manifest) {
    const PendingCheckpoint& c = it->second;
    Status s = WriteCheckpointManifest(*fs_, ServerManifestPath(c.dir, options_.rank),
                                       CheckpointManifest{id, c.step, c.files});
    if (!s.ok()) return Refuse(responder, kCheckpointCommit, s);
  }
  pending_checkpoints_.erase(it);
  if (id == last_written_) last_committed_ = id;  // the next increment may build on it
  responder.SendAck(1);
}

Status Server::Restore(const std::string& root, CheckpointManifest* restored) {
  std::vector<WholeCheckpoint> candidates = ListWholeCheckpoints(root, options_.rank);
  if (candidates.empty())
    return NotFound("no whole checkpoint (a directory with a manifest) under " + root +
                    " for server " + std::to_string(options_.rank));
  std::string skipped;  // damaged newer checkpoints, for the log and the final error
  for (const WholeCheckpoint& candidate : candidates) {
    Status loaded = candidate.manifest.status();
    if (loaded.ok()) loaded = RestoreFrom(candidates, candidate);
    if (loaded.ok()) {
      if (!skipped.empty()) {
        LOG(WARNING) << "server " << options_.rank << " restored from the older whole checkpoint "
                     << candidate.dir << " because newer ones are damaged: " << skipped;
      }
      if (restored != nullptr) *restored = *candidate.manifest;
      return Status::OK();
    }
    // Only damage falls back: a checkpoint of another table spec is as wrong in every
    // older directory, and must stop the server.
    if (loaded.code() != StatusCode::kDataLoss) return loaded.WithContext("restore from " + candidate.dir);
    LOG(WARNING) << "server " << options_.rank << ": checkpoint " << candidate.dir
                 << " is damaged, trying the previous one: " << loaded;
    skipped += (skipped.empty() ? "" : "; ") + candidate.dir + ": " + loaded.ToString();
  }
  return DataLoss("every checkpoint under " + root + " is damaged: " + skipped);
}

Status Server::RestoreFrom(const std::vector<WholeCheckpoint>& all,
                           const WholeCheckpoint& candidate) {
  const std::string& dir = candidate.dir;
  const CheckpointManifest& manifest = *candidate.manifest;
  // Check every file of every chain against its manifest and read it first; swap only
  // when all loaded.
  std::vector<std::vector<std::unique_ptr<EmbeddingTable>>> loaded;
  size_t increments = 0;
  for (uint32_t t = 0; t < tables_->num_tables(); ++t) {
    const TableSpec& spec = job_.tables[t];
    const std::string name =
        std::filesystem::path(TableCheckpointPath(dir, options_.rank, spec.name)).filename();
    MTPS_ASSIGN_OR_RETURN(std::vector<ChainFile> chain,
                          ResolveCheckpointChain(all, candidate, name));
    for (const ChainFile& file : chain)
      MTPS_RETURN_IF_ERROR(VerifyCheckpointFile(*fs_, file.manifest, file.path));
    auto parts = LoadTableChain(*fs_, chain, spec, tables_->num_shards());
    if (!parts.ok()) return parts.status();
    loaded.push_back(std::move(parts).value());
    increments += chain.size() - 1;
  }
  const std::string dense_path = DenseCheckpointPath(dir, options_.rank);
  MTPS_RETURN_IF_ERROR(VerifyCheckpointFile(*fs_, manifest, dense_path));
  DenseBlockStore staging(job_.training.dense_optimizer);
  MTPS_RETURN_IF_ERROR(LoadDenseCheckpoint(*fs_, dense_path, staging));
  for (uint32_t t = 0; t < tables_->num_tables(); ++t)
    MTPS_RETURN_IF_ERROR(tables_->ReplaceTable(t, std::move(loaded[t])));
  MTPS_RETURN_IF_ERROR(dense_->Restore(staging.Snapshot()));
  LOG(INFO) << "server " << options_.rank << " restored " << tables_->num_tables()
            << " tables and " << dense_->num_blocks() << " dense blocks from " << dir
            << " (checkpoint " << manifest.id << ", step " << manifest.step << ", "
            << increments << " increments applied over whole table files)";
  return Status::OK();
}

// ---- stats ----

void Server::HandleStats(IncomingMessage& request, Responder responder) {
  auto wanted = request.envelope().getBody().getStats().getTableIds();
  std::vector<uint32_t> ids;
  for (uint32_t id : wanted) {
    if (StatusOr<const TableSpec*> spec = CheckTable(id); !spec.ok())
      return Refuse(responder, kStats, spec.status());
    ids.push_back(id);
  }
  if (ids.empty())
    for (uint32_t t = 0; t < tables_->num_tables(); ++t) ids.push_back(t);
  auto reply = responder.NewReply();
  auto stats = reply->body().initStatsReply();
  auto tables = stats.initTables(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const TableCounters c = *tables_->Counters(ids[i]);
    auto t = tables[i];
    t.setTableId(ids[i]);
    t.setName(job_.tables[ids[i]].name);
    t.setRows(c.rows);
    t.setBytes(c.bytes);
    t.setAdmitted(c.admitted);
    t.setEvicted(c.evicted);
    t.setExpired(c.expired);
    t.setDroppedPushes(c.dropped_pushes);
    t.setRejectedRequests(c.rejected_requests +
                          table_rejected_[ids[i]].load(std::memory_order_relaxed));
  }
  stats.setDenseBlocks(static_cast<uint32_t>(dense_->num_blocks()));
  stats.setRequests(requests_.load(std::memory_order_relaxed));
  responder.Send(std::move(reply));
}

}  // namespace mtps::ps
