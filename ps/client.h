// ps::Client: how a worker reads and updates the parameter servers — sparse rows by key
// (routed by jump hash) and dense blocks by id (block id % servers), all servers at once.
//
//   auto client = ps::Client::Connect({"tcp://10.0.0.1:7000", "tcp://10.0.0.2:7000"});
//   std::vector<float> rows(keys.size() * dim);
//   std::future<Status> pulled = (*client)->PullAsync(table_id, keys, dim, rows.data());
//   ...                                   // compute while the rows travel
//   MTPS_RETURN_IF_ERROR(pulled.get());   // rows[i*dim .. i*dim+dim) = row of keys[i]
//   auto pushed = (*client)->Push(table_id, keys, dim, grads.data(), {.step = t});
//
// One operation sends at most one request to each server, to all servers at once, and
// the answers are scattered straight into the caller's [n x dim] buffer. Keys may repeat:
// a pull fills every position, a push sums the repeated rows' gradients. Pulls are
// retried on timeout (they are idempotent); pushes are not. A sparse pull or push that a
// server refuses with an error of a retryable kind (Status::retryable(): unavailable for
// now, nothing applied) is sent again after a growing backoff, a few times; any other
// error is returned at once. Every failure, local or remote, reaches the caller as a
// Status naming the server.
//
// Thread-safety: every method may be called from any thread, with any number of
// operations in flight. Callbacks run on a transport I/O thread and must not block.
// Buffers: `keys` and input values may be reused once the call returns; an output
// buffer must stay valid until the operation completes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "protocol/transport.h"
#include "ps/parameter_types.h"
#include "ps/push_result.h"

namespace mtps::ps {

class KeyRouting;

struct ClientOptions {
  proto::Role role = proto::Role::WORKER;
  int32_t rank = -1;
  TransportOptions transport;
  std::chrono::milliseconds timeout{10000};  // per attempt
  int pull_attempts = 3;                     // pulls are idempotent: sent again on timeout
  // Sparse pulls and pushes refused with a retryable error: resends, and the first backoff
  // (doubled each time, at most max_retry_backoff). See CallOptions.
  int error_retries = 3;
  std::chrono::milliseconds retry_backoff{10};
  std::chrono::milliseconds max_retry_backoff{200};
  // Refuse a push holding NaN or Inf before any server sees it, so no server applies
  // its part of a push that another server would reject. Off by default: the servers
  // check every value they receive (the trust boundary) and refuse a bad part whole, so
  // a bad push is refused, never applied wrongly; with several servers the good parts of
  // it may have been applied.
  bool check_finite = false;
  // A sparse pull or async push whose request or reply to one server would pass this many
  // bytes goes to that server as several requests (servers refuse replies past their
  // max_reply_bytes, 256 MiB by default). A sync push is one request per server and step.
  size_t max_request_bytes = size_t{64} << 20;
  // An async push goes to each server as requests of about this many bytes, sent back to
  // back, so that a server applies one part while the next is still on the wire and the
  // client copies the one after (one 7 MB push at dim 16 ran about twice as fast in
  // benchmarks/ps_wire_bench.sh; 512 KiB parts beat 1 MiB ones in 4 of 4 interleaved sets,
  // 2 MiB ones lost). max_request_bytes still bounds it; 0 means no split.
  size_t push_part_bytes = size_t{512} << 10;
  // A sparse pull goes to each server as requests whose replies hold about this many bytes
  // of rows, all sent at once: the server sends one part's rows while it copies the next,
  // and each reply is copied out while it is still in cache (a 25.6 MB pull at dim 64 ran
  // 1.4-2.2x as fast as one request in ps_wire_bench). max_request_bytes still bounds it;
  // 0 means no split.
  size_t pull_part_bytes = size_t{2} << 20;
};

struct TableStatsValue {
  uint32_t table_id = 0;
  std::string name;
  uint64_t rows = 0, bytes = 0, admitted = 0, evicted = 0, expired = 0;
  uint64_t dropped_pushes = 0, rejected_requests = 0;
};
struct ServerStatsValue {
  int32_t server = 0;
  std::vector<TableStatsValue> tables;
  uint32_t dense_blocks = 0;
  uint64_t requests = 0;
};

class Client {
 public:
  using DoneCallback = std::function<void(Status)>;
  using PushCallback = std::function<void(StatusOr<PushResult>)>;

  // `server_addresses[r]` is the endpoint of the server of rank r.
  static StatusOr<std::unique_ptr<Client>> Connect(std::vector<std::string> server_addresses,
                                                   const ClientOptions& options = {});
  ~Client();  // operations still in flight complete with an error first
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int32_t num_servers() const { return static_cast<int32_t>(servers_.size()); }
  // Every operation in flight completes now with `reason` (its buffers are not written
  // afterwards), and every later one at once: the job ended, its servers will not answer.
  void CancelAll(const Status& reason);


  // Sparse rows. `out` and `gradients` are [keys.size() x dim] row-major.
  void PullAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim, float* out,
                 const PullOptions& options, DoneCallback done);
  std::future<Status> PullAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                                float* out, const PullOptions& options = {});
  Status Pull(uint32_t table_id, std::span<const uint64_t> keys, int dim, float* out,
              const PullOptions& options = {});

  void PushAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                 const float* gradients, const PushOptions& options, PushCallback done);
  std::future<StatusOr<PushResult>> PushAsync(uint32_t table_id, std::span<const uint64_t> keys,
                                              int dim, const float* gradients,
                                              const PushOptions& options = {});
  StatusOr<PushResult> Push(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                            const float* gradients, const PushOptions& options = {});

  // Dense blocks: created where absent (present ones are kept), pulled, pushed.
  Status DenseInit(std::span<const DenseBlockIn> blocks);
  std::future<Status> DensePullAsync(std::span<const DenseBlockOut> blocks);
  Status DensePull(std::span<const DenseBlockOut> blocks);
  std::future<StatusOr<PushResult>> DensePushAsync(std::span<const DenseBlockIn> gradients,
                                                   const PushOptions& options = {});
  StatusOr<PushResult> DensePush(std::span<const DenseBlockIn> gradients,
                                 const PushOptions& options = {});

  // One entry per server, by rank. `table_ids` empty = every table.
  StatusOr<std::vector<ServerStatsValue>> Stats(std::span<const uint32_t> table_ids = {});

 private:
  struct Operation;
  struct RoutingPool;
  // What one request of an operation covers: `server`'s routed keys (slots)
  // [first, first + count); a dense operation has one request per server and no slots.
  struct Slots {
    int32_t server = 0;
    size_t first = 0;
    size_t count = 0;
  };
  struct Part {
    Slots slots;
    std::unique_ptr<OutgoingMessage> request;
  };

  Client(std::vector<std::unique_ptr<RpcClient>> servers, const ClientOptions& options);
  // `retry_errors`: resend on retryable error replies (the sparse requests, whose server
  // refuses them before acting on any part).
  CallOptions CallOptionsFor(bool idempotent, bool retry_errors = false) const;
  // Sends every part's request to its server, all at once; `on_reply(op, slots, reply)`
  // reads an OK answer into the caller's buffers. The
  // operation finishes after the last answer (at once when there is no part).
  template <typename OnReply>
  void SendAll(std::shared_ptr<Operation> op, std::vector<Part> parts,
               const CallOptions& call_options, OnReply on_reply);
  // Sends one part of `op`, whose `remaining` already counts it.
  template <typename OnReply>
  void SendPart(const std::shared_ptr<Operation>& op, Part& part,
                const CallOptions& call_options, const OnReply& on_reply);
  // Cuts each server's `routing` slots into parts of at most `keys_per_part` keys.
  static std::vector<Part> SplitBySlots(const KeyRouting& routing, size_t keys_per_part);
  // One part per server that has blocks in `groups`.
  static std::vector<Part> PartsPerServer(const std::vector<std::vector<size_t>>& groups);

  const ClientOptions options_;
  std::shared_ptr<RoutingPool> routing_pool_;
  // Last member: destroyed first, so in-flight callbacks finish while the rest is alive.
  std::vector<std::unique_ptr<RpcClient>> servers_;
};

}  // namespace mtps::ps
