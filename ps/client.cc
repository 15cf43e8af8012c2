// ps::Client: builds one request per involved server straight from the caller's keys and
// values, sends them all, and scatters each answer into the caller's buffer as it lands.
#include "ps/client.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include <kj/exception.h>

#include "ps/jump_hash.h"
#include "ps/key_routing.h"

namespace mtps::ps {

// Keys and floats travel as little-endian bytes and are read in place.
static_assert(std::endian::native == std::endian::little, "mtps assumes a little-endian host");

using Kind = proto::Envelope::Body::Which;

// One caller's operation split over servers: counts the answers still to come, keeps the
// first failure, and runs `finish` once, after the last answer.
struct Client::Operation {
  std::atomic<int> remaining{0};
  std::mutex mutex;
  Status error;  // GUARDED_BY(mutex)
  std::atomic<uint64_t> applied{0};
  std::atomic<uint64_t> dropped{0};
  std::unique_ptr<KeyRouting> routing;  // sparse operations only
  std::function<void(Operation&, Status)> finish;

  void PartDone(Status status) {
    if (!status.ok()) {
      std::lock_guard<std::mutex> lock(mutex);
      if (error.ok()) error = std::move(status);
    }
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish();
  }
  void Fail(Status status) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::move(status);
    }
    Finish();
  }
  void Finish() {
    Status status;
    {
      std::lock_guard<std::mutex> lock(mutex);
      status = error;
    }
    finish(*this, std::move(status));
  }
};

// Routings are reused across operations so that steady-state pulls allocate no index
// memory. Shared with operations so a late callback can still return its routing.
struct Client::RoutingPool {
  std::mutex mutex;
  std::vector<std::unique_ptr<KeyRouting>> free;  // GUARDED_BY(mutex)

  std::unique_ptr<KeyRouting> Acquire() {
    std::lock_guard<std::mutex> lock(mutex);
    if (free.empty()) return std::make_unique<KeyRouting>();
    auto routing = std::move(free.back());
    free.pop_back();
    return routing;
  }
  void Release(std::unique_ptr<KeyRouting> routing) {
    std::lock_guard<std::mutex> lock(mutex);
    free.push_back(std::move(routing));
  }
};

namespace {

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::SPARSE_PULL_REPLY: return "sparsePullReply";
    case Kind::SPARSE_PUSH_REPLY: return "sparsePushReply";
    case Kind::DENSE_PULL_REPLY: return "densePullReply";
    case Kind::ACK: return "ack";
    case Kind::STATS_REPLY: return "statsReply";
    default: return "another kind";
  }
}

Status ExpectKind(const IncomingMessage& reply, Kind expected) {
  const Kind got = reply.envelope().getBody().which();
  if (got == expected) return Status::OK();
  return Internal(std::string("expected a ") + KindName(expected) + " reply, got body kind " +
                  std::to_string(static_cast<int>(got)));
}

// Copies `count` floats and reports whether all of them are finite, in one pass.
bool CopyFinite(float* dst, const float* src, size_t count) {
  bool finite = true;
  for (size_t k = 0; k < count; ++k) {
    const float v = src[k];
    dst[k] = v;
    finite &= (v - v == 0.0f);  // NaN - NaN and Inf - Inf are NaN
  }
  return finite;
}

// Rows of the usual widths are copied as inline vector moves; a libc call per row costs
// more than the copy itself.
inline void CopyRowBytes(char* dst, const char* src, size_t bytes) {
  switch (bytes) {
    case 32: std::memcpy(dst, src, 32); return;
    case 64: std::memcpy(dst, src, 64); return;
    case 128: std::memcpy(dst, src, 128); return;
    case 256: std::memcpy(dst, src, 256); return;
    default: std::memcpy(dst, src, bytes);
  }
}

size_t FirstNonFinite(const float* values, size_t count) {
  for (size_t k = 0; k < count; ++k)
    if (!std::isfinite(values[k])) return k;
  return count;
}

template <typename Block>
std::vector<std::vector<size_t>> GroupBlocksByOwner(std::span<const Block> blocks,
                                                    int32_t num_servers) {
  std::vector<std::vector<size_t>> groups(num_servers);
  for (size_t i = 0; i < blocks.size(); ++i)
    groups[DenseBlockOwner(blocks[i].id, num_servers)].push_back(i);
  return groups;
}

void SetDenseBlock(proto::DenseBlock::Builder out, const DenseBlockIn& block, bool with_name) {
  out.setId(block.id);
  if (with_name) out.setName(capnp::Text::Reader(block.name.data(), block.name.size()));
  auto values = out.initValues(block.values.size() * sizeof(float));
  std::memcpy(values.begin(), block.values.data(), values.size());
}

template <typename T>
std::future<T> FutureOf(std::function<void(std::function<void(T)>)> start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  start([promise](T result) { promise->set_value(std::move(result)); });
  return future;
}

}  // namespace

Client::Client(std::vector<std::unique_ptr<RpcClient>> servers, const ClientOptions& options)
    : options_(options),
      routing_pool_(std::make_shared<RoutingPool>()),
      servers_(std::move(servers)) {}

Client::~Client() = default;

StatusOr<std::unique_ptr<Client>> Client::Connect(std::vector<std::string> server_addresses,
                                                  const ClientOptions& options) {
  if (server_addresses.empty()) return InvalidArgument("ps::Client needs at least one server");
  if (options.pull_attempts < 1)
    return InvalidArgument("pull_attempts must be >= 1, got " +
                           std::to_string(options.pull_attempts));
  if (options.error_retries < 0)
    return InvalidArgument("error_retries must be >= 0, got " +
                           std::to_string(options.error_retries));
  // One payload pool for the connections to all servers: a buffer sent to one is
  // reused for another.
  TransportOptions transport = options.transport;
  if (transport.payload_pool == nullptr) transport.payload_pool = std::make_shared<PayloadPool>();
  std::vector<std::unique_ptr<RpcClient>> servers;
  for (size_t rank = 0; rank < server_addresses.size(); ++rank) {
    auto client = RpcClient::Connect(server_addresses[rank], options.role, options.rank,
                                     transport);
    if (!client.ok())
      return client.status().WithContext("server " + std::to_string(rank) + " (" +
                                         server_addresses[rank] + ")");
    servers.push_back(std::move(client).value());
  }
  return std::unique_ptr<Client>(new Client(std::move(servers), options));
}

CallOptions Client::CallOptionsFor(bool idempotent, bool retry_errors) const {
  return CallOptions{.timeout = options_.timeout,
                     .max_attempts = idempotent ? options_.pull_attempts : 1,
                     .max_error_retries = retry_errors ? options_.error_retries : 0,
                     .retry_backoff = options_.retry_backoff,
                     .max_retry_backoff = options_.max_retry_backoff};
}

std::vector<Client::Part> Client::SplitBySlots(const KeyRouting& routing,
                                               size_t keys_per_part) {
  std::vector<Part> parts;
  keys_per_part = std::max<size_t>(keys_per_part, 1);
  for (int32_t s = 0; s < routing.num_servers(); ++s) {
    const size_t n = routing.unique_count(s);
    for (size_t first = 0; first < n; first += keys_per_part)
      parts.push_back(Part{{s, first, std::min(keys_per_part, n - first)}, nullptr});
  }
  return parts;
}

std::vector<Client::Part> Client::PartsPerServer(const std::vector<std::vector<size_t>>& groups) {
  std::vector<Part> parts;
  for (size_t s = 0; s < groups.size(); ++s)
    if (!groups[s].empty()) parts.push_back(Part{{static_cast<int32_t>(s), 0, 0}, nullptr});
  return parts;
}

template <typename OnReply>
void Client::SendAll(std::shared_ptr<Operation> op, std::vector<Part> parts,
                     const CallOptions& call_options, OnReply on_reply) {
  if (parts.empty()) {
    op->Finish();
    return;
  }
  op->remaining.store(static_cast<int>(parts.size()), std::memory_order_relaxed);
  for (Part& part : parts) SendPart(op, part, call_options, on_reply);
}

template <typename OnReply>
void Client::SendPart(const std::shared_ptr<Operation>& op, Part& part,
                      const CallOptions& call_options, const OnReply& on_reply) {
  const int32_t s = part.slots.server;
  const std::string* endpoint = &servers_[s]->endpoint();
  servers_[s]->CallAsync(
      std::move(part.request), call_options,
      [op, part = part.slots, endpoint, on_reply](StatusOr<IncomingMessage> reply) {
        Status status = reply.ok() ? ReplyStatus(*reply) : reply.status();
        if (status.ok()) {
          try {
            status = on_reply(*op, part, *reply);
          } catch (const kj::Exception& e) {
            status = DataLoss("malformed reply: " + std::string(e.getDescription().cStr()));
          }
        }
        if (!status.ok())
          status = status.WithContext("server " + std::to_string(part.server) + " (" +
                                      *endpoint + ")");
        op->PartDone(std::move(status));
      });
}

// ---- sparse ----

void Client::PullAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim, float* out,
                       const PullOptions& options, DoneCallback done) {
  if (dim <= 0) {
    done(InvalidArgument("pull from table " + std::to_string(table_id) + ": dim must be > 0, got " +
                         std::to_string(dim)));
    return;
  }
  auto op = std::make_shared<Operation>();
  op->routing = routing_pool_->Acquire();
  KeyRouting& routing = *op->routing;
  routing.Build(keys, num_servers(), options.keys_unique);

  const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
  op->finish = [pool = routing_pool_, out, row_bytes, done = std::move(done)](Operation& self,
                                                                            Status status) {
    if (status.ok()) {
      for (const auto& d : self.routing->duplicates())
        std::memcpy(reinterpret_cast<char*>(out) + d.position * row_bytes,
                    reinterpret_cast<const char*>(out) + d.first_position * row_bytes, row_bytes);
    }
    pool->Release(std::move(self.routing));
    done(std::move(status));
  };

  // A server's keys go out in parts of about pull_part_bytes, never so large that a reply
  // passes the limit.
  const size_t part_bytes = options_.pull_part_bytes == 0
                                ? options_.max_request_bytes
                                : std::min(options_.pull_part_bytes, options_.max_request_bytes);
  std::vector<Part> parts =
      SplitBySlots(routing, part_bytes / std::max(row_bytes, sizeof(uint64_t)));
  for (Part& part : parts) {
    const Slots& slots = part.slots;
    const auto positions = routing.positions(slots.server).subspan(slots.first, slots.count);
    part.request = servers_[slots.server]->NewRequest();
    auto pull = part.request->body().initSparsePull();
    pull.setTableId(table_id);
    pull.setStep(options.step);
    pull.setCountAsSighting(options.count_as_sighting);
    OutgoingMessage::Payload key_bytes = part.request->NewPayload(positions.size() * sizeof(uint64_t));
    pull.adoptKeys(kj::mv(key_bytes.orphan));
    auto* wire_keys = reinterpret_cast<uint64_t*>(key_bytes.data);
    if (routing.in_order()) {  // unique, one server: the part is a range of the caller's keys
      std::memcpy(wire_keys, keys.data() + slots.first, positions.size() * sizeof(uint64_t));
    } else {
      for (size_t j = 0; j < positions.size(); ++j) wire_keys[j] = keys[positions[j]];
    }
  }

  SendAll(std::move(op), std::move(parts),
          CallOptionsFor(/*idempotent=*/true, /*retry_errors=*/true),
          [routing = &routing, table_id, dim, out, row_bytes](
              Operation&, const Slots& part, const IncomingMessage& reply) -> Status {
            MTPS_RETURN_IF_ERROR(ExpectKind(reply, Kind::SPARSE_PULL_REPLY));
            auto answer = reply.envelope().getBody().getSparsePullReply();
            if (answer.getDim() != static_cast<uint32_t>(dim))
              return InvalidArgument("table " + std::to_string(table_id) + " has dim " +
                                     std::to_string(answer.getDim()) + ", the caller expects " +
                                     std::to_string(dim));
            const auto positions =
                routing->positions(part.server).subspan(part.first, part.count);
            auto values = answer.getValues();
            if (values.size() != positions.size() * row_bytes)
              return DataLoss("pull reply of table " + std::to_string(table_id) + " holds " +
                              std::to_string(values.size()) + " value bytes for " +
                              std::to_string(positions.size()) + " keys of dim " +
                              std::to_string(dim));
            const char* src = reinterpret_cast<const char*>(values.begin());
            char* dst = reinterpret_cast<char*>(out);
            if (routing->in_order()) {
              // Every key unique and on this server: the answer is a range in the caller's order.
              std::memcpy(dst + part.first * row_bytes, src, values.size());
            } else {
              for (size_t j = 0; j < positions.size(); ++j)
                CopyRowBytes(dst + positions[j] * row_bytes, src + j * row_bytes, row_bytes);
            }
            return Status::OK();
          });
}

std::future<Status> Client::PullAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                                      float* out, const PullOptions& options) {
  return FutureOf<Status>([&](std::function<void(Status)> done) {
    PullAsync(table_id, keys, dim, out, options, std::move(done));
  });
}

Status Client::Pull(uint32_t table_id, std::span<const uint64_t> keys, int dim, float* out,
                    const PullOptions& options) {
  return PullAsync(table_id, keys, dim, out, options).get();
}

void Client::PushAsync(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                       const float* gradients, const PushOptions& options, PushCallback done) {
  const std::string what = "push to table " + std::to_string(table_id);
  if (dim <= 0) {
    done(InvalidArgument(what + ": dim must be > 0, got " + std::to_string(dim)));
    return;
  }
  auto op = std::make_shared<Operation>();
  op->routing = routing_pool_->Acquire();
  KeyRouting& routing = *op->routing;
  routing.Build(keys, num_servers(), options.keys_unique);
  op->finish = [pool = routing_pool_, done = std::move(done)](Operation& self, Status status) {
    pool->Release(std::move(self.routing));
    if (!status.ok()) {
      done(std::move(status));
      return;
    }
    done(PushResult{.applied = self.applied.load(), .dropped = self.dropped.load()});
  };

  // Build every request before sending any, so a bad gradient stops the whole push. A sync
  // push is one request per server: the servers count one push per worker and step.
  const size_t row = static_cast<size_t>(dim);
  const size_t key_bytes_on_wire = sizeof(uint64_t) + row * sizeof(float);
  const size_t part_bytes = options_.push_part_bytes == 0
                                ? options_.max_request_bytes
                                : std::min(options_.push_part_bytes, options_.max_request_bytes);
  const size_t keys_per_part = options.sync ? std::numeric_limits<size_t>::max()
                                            : part_bytes / key_bytes_on_wire;
  std::vector<Part> parts = SplitBySlots(routing, keys_per_part);
  if (options.sync) {
    // Every server counts every worker's part of a step, so one with none of this push's
    // keys gets an empty part: without it, that server's step would wait for ever.
    for (int32_t s = 0; s < num_servers(); ++s)
      if (routing.unique_count(s) == 0) parts.push_back(Part{{s, 0, 0}, nullptr});
  }
  // Where each server's slot j lands: the wire rows of the part that holds it.
  std::vector<size_t> first_part_of(num_servers(), 0);
  for (size_t p = parts.size(); p-- > 0;) first_part_of[parts[p].slots.server] = p;
  std::vector<float*> wire_rows(parts.size(), nullptr);
  for (const Part& part : parts) {
    if (part.slots.count * row * sizeof(float) > kMaxDataFieldBytes) {
      op->Fail(ResourceExhausted(what + ": a sync push of " + std::to_string(part.slots.count) +
                                 " keys of dim " + std::to_string(dim) + " to server " +
                                 std::to_string(part.slots.server) +
                                 " does not fit in one request; nothing was sent"));
      return;
    }
  }
  const auto on_reply = [](Operation& self, const Slots&, const IncomingMessage& reply) -> Status {
    MTPS_RETURN_IF_ERROR(ExpectKind(reply, Kind::SPARSE_PUSH_REPLY));
    auto answer = reply.envelope().getBody().getSparsePushReply();
    self.applied.fetch_add(answer.getApplied(), std::memory_order_relaxed);
    self.dropped.fetch_add(answer.getDropped(), std::memory_order_relaxed);
    return Status::OK();
  };
  const CallOptions call_options = CallOptionsFor(/*idempotent=*/false, /*retry_errors=*/true);
  // Without a finiteness check or repeated keys to sum in, no later part can stop the push:
  // each part goes as soon as it is built, so the wire carries it while the next is copied.
  const bool send_as_built = !options_.check_finite && routing.duplicates().empty();
  if (send_as_built) {
    if (parts.empty()) return op->Finish();
    op->remaining.store(static_cast<int>(parts.size()), std::memory_order_relaxed);
  }
  bool finite = true;
  for (size_t p = 0; p < parts.size(); ++p) {
    Part& part = parts[p];
    const Slots& slots = part.slots;
    const auto positions = routing.positions(slots.server).subspan(slots.first, slots.count);
    part.request = servers_[slots.server]->NewRequest();
    auto push = part.request->body().initSparsePush();
    push.setTableId(table_id);
    push.setStep(options.step);
    push.setSync(options.sync);
    push.setWorkerRank(options.worker_rank);
    push.setNumWorkers(options.num_workers);
    push.setAttempt(options.attempt);
    OutgoingMessage::Payload key_bytes = part.request->NewPayload(positions.size() * sizeof(uint64_t));
    OutgoingMessage::Payload grad_bytes =
        part.request->NewPayload(positions.size() * row * sizeof(float));
    push.adoptKeys(kj::mv(key_bytes.orphan));
    push.adoptGradients(kj::mv(grad_bytes.orphan));
    auto* wire_keys = reinterpret_cast<uint64_t*>(key_bytes.data);
    wire_rows[p] = reinterpret_cast<float*>(grad_bytes.data);
    if (routing.in_order() && !options_.check_finite) {
      // Unique keys, one server: the part is a range of the caller's keys and rows.
      if (!positions.empty()) {
        std::memcpy(wire_keys, keys.data() + slots.first, positions.size() * sizeof(uint64_t));
        std::memcpy(wire_rows[p], gradients + slots.first * row,
                    positions.size() * row * sizeof(float));
      }
      if (send_as_built) SendPart(op, part, call_options, on_reply);
      continue;
    }
    for (size_t j = 0; j < positions.size(); ++j) {
      wire_keys[j] = keys[positions[j]];
      if (options_.check_finite) {
        finite &= CopyFinite(wire_rows[p] + j * row, gradients + positions[j] * row, row);
      } else {
        CopyRowBytes(reinterpret_cast<char*>(wire_rows[p] + j * row),
                     reinterpret_cast<const char*>(gradients + positions[j] * row),
                     row * sizeof(float));
      }
    }
    if (send_as_built) SendPart(op, part, call_options, on_reply);
  }
  if (send_as_built) return;
  for (const auto& d : routing.duplicates()) {
    const int32_t server = routing.server_of(d.position);
    const size_t slot = routing.slot_of(d.position);
    const size_t p = first_part_of[server] + slot / std::max<size_t>(keys_per_part, 1);
    float* sum = wire_rows[p] + (slot - parts[p].slots.first) * row;
    const float* add = gradients + d.position * row;
    for (size_t k = 0; k < row; ++k) sum[k] += add[k];
    if (options_.check_finite) finite &= FirstNonFinite(add, row) == row;
  }
  if (!finite) {
    const size_t first_bad = FirstNonFinite(gradients, keys.size() * row);
    const size_t i = first_bad / row;
    op->Fail(InvalidArgument(what + ": gradient of key " + std::to_string(keys[i]) +
                             " (position " + std::to_string(i) + ") holds " +
                             std::to_string(gradients[first_bad]) + " at index " +
                             std::to_string(first_bad % row) + "; nothing was sent"));
    return;
  }

  SendAll(std::move(op), std::move(parts), call_options, on_reply);
}

std::future<StatusOr<PushResult>> Client::PushAsync(uint32_t table_id,
                                                    std::span<const uint64_t> keys, int dim,
                                                    const float* gradients,
                                                    const PushOptions& options) {
  return FutureOf<StatusOr<PushResult>>([&](std::function<void(StatusOr<PushResult>)> done) {
    PushAsync(table_id, keys, dim, gradients, options, std::move(done));
  });
}

StatusOr<PushResult> Client::Push(uint32_t table_id, std::span<const uint64_t> keys, int dim,
                                  const float* gradients, const PushOptions& options) {
  return PushAsync(table_id, keys, dim, gradients, options).get();
}

}  // namespace mtps::ps

// ---- dense ----

namespace mtps::ps {

Status Client::DenseInit(std::span<const DenseBlockIn> blocks) {
  auto groups = GroupBlocksByOwner(blocks, num_servers());
  std::vector<Part> parts = PartsPerServer(groups);
  for (Part& part : parts) {
    const int32_t s = part.slots.server;
    part.request = servers_[s]->NewRequest();
    auto list = part.request->body().initDenseInit().initBlocks(groups[s].size());
    for (size_t j = 0; j < groups[s].size(); ++j)
      SetDenseBlock(list[j], blocks[groups[s][j]], /*with_name=*/true);
  }
  auto op = std::make_shared<Operation>();
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  op->finish = [promise](Operation&, Status status) { promise->set_value(std::move(status)); };
  // Creating a block that exists keeps it, so sending again is harmless.
  SendAll(std::move(op), std::move(parts), CallOptionsFor(/*idempotent=*/true),
          [](Operation&, const Slots&, const IncomingMessage& reply) {
            return ExpectKind(reply, Kind::ACK);
          });
  return future.get();
}

std::future<Status> Client::DensePullAsync(std::span<const DenseBlockOut> blocks) {
  auto groups = GroupBlocksByOwner(blocks, num_servers());
  std::vector<Part> parts = PartsPerServer(groups);
  for (Part& part : parts) {
    const int32_t s = part.slots.server;
    part.request = servers_[s]->NewRequest();
    auto ids = part.request->body().initDensePull().initBlockIds(groups[s].size());
    for (size_t j = 0; j < groups[s].size(); ++j) ids.set(j, blocks[groups[s][j]].id);
  }
  auto op = std::make_shared<Operation>();
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  op->finish = [promise](Operation&, Status status) { promise->set_value(std::move(status)); };
  // The caller's list of destinations may go away once this returns; the buffers not.
  auto wanted = std::make_shared<std::vector<DenseBlockOut>>(blocks.begin(), blocks.end());
  auto owned_groups = std::make_shared<std::vector<std::vector<size_t>>>(std::move(groups));
  SendAll(std::move(op), std::move(parts), CallOptionsFor(/*idempotent=*/true),
          [wanted, owned_groups](Operation&, const Slots& part, const IncomingMessage& reply) -> Status {
            MTPS_RETURN_IF_ERROR(ExpectKind(reply, Kind::DENSE_PULL_REPLY));
            auto got = reply.envelope().getBody().getDensePullReply().getBlocks();
            const auto& group = (*owned_groups)[part.server];
            if (got.size() != group.size())
              return DataLoss("dense pull asked for " + std::to_string(group.size()) +
                              " blocks, the reply holds " + std::to_string(got.size()));
            for (size_t j = 0; j < group.size(); ++j) {
              const DenseBlockOut& dest = (*wanted)[group[j]];
              auto block = got[j];
              if (block.getId() != dest.id)
                return DataLoss("dense pull reply lists block " + std::to_string(block.getId()) +
                                " where block " + std::to_string(dest.id) + " was asked for");
              auto values = block.getValues();
              if (values.size() != dest.values.size_bytes())
                return InvalidArgument("dense block " + std::to_string(dest.id) + " holds " +
                                       std::to_string(values.size() / sizeof(float)) +
                                       " floats, the caller's buffer " +
                                       std::to_string(dest.values.size()));
              std::memcpy(dest.values.data(), values.begin(), values.size());
            }
            return Status::OK();
          });
  return future;
}

Status Client::DensePull(std::span<const DenseBlockOut> blocks) {
  return DensePullAsync(blocks).get();
}

std::future<StatusOr<PushResult>> Client::DensePushAsync(std::span<const DenseBlockIn> gradients,
                                                         const PushOptions& options) {
  auto promise = std::make_shared<std::promise<StatusOr<PushResult>>>();
  auto future = promise->get_future();
  auto op = std::make_shared<Operation>();
  op->finish = [promise](Operation& self, Status status) {
    if (!status.ok()) {
      promise->set_value(std::move(status));
      return;
    }
    promise->set_value(PushResult{.applied = self.applied.load(), .dropped = 0});
  };
  if (options_.check_finite) {
    for (const DenseBlockIn& block : gradients) {
      const size_t k = FirstNonFinite(block.values.data(), block.values.size());
      if (k == block.values.size()) continue;
      op->Fail(InvalidArgument("dense push: gradient of block " + std::to_string(block.id) +
                               " holds " + std::to_string(block.values[k]) + " at index " +
                               std::to_string(k) + "; nothing was sent"));
      return future;
    }
  }
  auto groups = GroupBlocksByOwner(gradients, num_servers());
  std::vector<Part> parts = PartsPerServer(groups);
  for (Part& part : parts) {
    const int32_t s = part.slots.server;
    part.request = servers_[s]->NewRequest();
    auto push = part.request->body().initDensePush();
    push.setStep(options.step);
    push.setSync(options.sync);
    push.setWorkerRank(options.worker_rank);
    push.setNumWorkers(options.num_workers);
    push.setSteps(options.dense_steps);
    push.setAttempt(options.attempt);
    auto list = push.initBlocks(groups[s].size());
    for (size_t j = 0; j < groups[s].size(); ++j)
      SetDenseBlock(list[j], gradients[groups[s][j]], /*with_name=*/false);
  }
  SendAll(std::move(op), std::move(parts), CallOptionsFor(/*idempotent=*/false),
          [](Operation& self, const Slots&, const IncomingMessage& reply) -> Status {
            MTPS_RETURN_IF_ERROR(ExpectKind(reply, Kind::ACK));
            self.applied.fetch_add(reply.envelope().getBody().getAck().getCount(),
                                   std::memory_order_relaxed);
            return Status::OK();
          });
  return future;
}

StatusOr<PushResult> Client::DensePush(std::span<const DenseBlockIn> gradients,
                                       const PushOptions& options) {
  return DensePushAsync(gradients, options).get();
}

void Client::CancelAll(const Status& reason) {
  for (const std::unique_ptr<RpcClient>& server : servers_) server->CancelAll(reason);
}

// ---- stats ----

StatusOr<std::vector<ServerStatsValue>> Client::Stats(std::span<const uint32_t> table_ids) {
  std::vector<Part> parts(num_servers());
  for (int32_t s = 0; s < num_servers(); ++s) {
    parts[s].slots.server = s;
    parts[s].request = servers_[s]->NewRequest();
    auto ids = parts[s].request->body().initStats().initTableIds(table_ids.size());
    for (size_t j = 0; j < table_ids.size(); ++j) ids.set(j, table_ids[j]);
  }
  // Each callback writes only its own server's entry.
  auto result = std::make_shared<std::vector<ServerStatsValue>>(num_servers());
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  auto op = std::make_shared<Operation>();
  op->finish = [promise](Operation&, Status status) { promise->set_value(std::move(status)); };
  SendAll(std::move(op), std::move(parts), CallOptionsFor(/*idempotent=*/true),
          [result](Operation&, const Slots& part, const IncomingMessage& reply) -> Status {
            MTPS_RETURN_IF_ERROR(ExpectKind(reply, Kind::STATS_REPLY));
            auto stats = reply.envelope().getBody().getStatsReply();
            ServerStatsValue& out = (*result)[part.server];
            out.server = part.server;
            out.dense_blocks = stats.getDenseBlocks();
            out.requests = stats.getRequests();
            for (auto t : stats.getTables()) {
              out.tables.push_back(TableStatsValue{
                  .table_id = t.getTableId(),
                  .name = t.getName().cStr(),
                  .rows = t.getRows(),
                  .bytes = t.getBytes(),
                  .admitted = t.getAdmitted(),
                  .evicted = t.getEvicted(),
                  .expired = t.getExpired(),
                  .dropped_pushes = t.getDroppedPushes(),
                  .rejected_requests = t.getRejectedRequests()});
            }
            return Status::OK();
          });
  MTPS_RETURN_IF_ERROR(future.get());
  return std::move(*result);
}

}  // namespace mtps::ps
