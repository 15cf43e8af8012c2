// ZeroMQ request-response transport for Cap'n Proto envelopes.
//
//   RpcServer server(options);
//   server.Handle(proto::Envelope::Body::ECHO, [](IncomingMessage& req, Responder r) {
//     auto reply = r.NewReply();                       // envelope filled: version, ids
//     reply->body().setEcho(req.envelope().getBody().getEcho());
//     r.Send(std::move(reply));
//   });
//   StatusOr<int> port = server.Bind("tcp://127.0.0.1:0");   // 0 = any free port
//   server.Start();
//
//   auto client = RpcClient::Connect("tcp://127.0.0.1:" + std::to_string(*port),
//                                    proto::Role::WORKER, rank, options);
//   auto req = (*client)->NewRequest();
//   req->body().setEcho(payload);
//   StatusOr<IncomingMessage> reply = (*client)->Call(std::move(req), {}).get();
//   // An Error reply arrives as !reply.ok() with the Status it carries.
//
// Wire format: one ZeroMQ multipart message per envelope, one frame per Cap'n Proto
// segment (ROUTER adds the peer's identity frame in front). Segments are handed to ZeroMQ
// without a copy; received frames are read in place (copied only when a frame is not
// 8-byte aligned). A message over max_message_bytes, one that fails the traversal limit,
// one of another protocol version or job, and one of an unknown kind is answered with an
// Error reply (or, if it cannot even be parsed, dropped with one log line); the server
// keeps serving.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <zmq.hpp>

#include "protocol/curve_keys.h"
#include "protocol/generation_fence.h"
#include "protocol/mtps.capnp.h"
#include "protocol/payload_pool.h"
#include "base/status.h"

namespace mtps {

// The most bytes one Cap'n Proto Data field (any list) can hold: 2^29 - 1 elements. A
// message that needs a larger field cannot be built; servers refuse such requests.
inline constexpr size_t kMaxDataFieldBytes = (size_t{1} << 29) - 1;

struct TransportOptions {
  size_t max_message_bytes = size_t{1} << 30;   // larger messages are refused
  uint64_t traversal_limit_words = uint64_t{1} << 28;
  // RpcServer: threads that run handlers. 0 runs them on the I/O thread itself, which saves
  // two thread hops per request but is only for handlers that never block.
  int handler_threads = 2;
  // 0 = accept any job; else a message must carry exactly this job id (0 is no wildcard).
  uint64_t job_id = 0;
  // RpcClient: stamped on every request (Envelope.senderGeneration); see GenerationFence.
  uint64_t generation = 0;
  // RpcServer: refuses requests of a fenced (older) generation before any handler runs.
  std::shared_ptr<const GenerationFence> fence;
  // CURVE: listening sockets admit only the allow-listed keys of the job (a ZAP handler)
  // and check each request's kind against its sender's key (protocol/authority.h);
  // connecting sockets present this node's key. Null = insecure (no encryption, anyone
  // may send anything). Defaults to the keys main() installed for the whole process.
  std::shared_ptr<const JobKeys> keys = ProcessJobKeys();
  // Where the large Data fields of messages this node builds come from
  // (OutgoingMessage::NewPayload). Null: each client or server makes its own; share one
  // between the clients of one process (ps::Client does) so buffers are reused across them.
  std::shared_ptr<PayloadPool> payload_pool;
};

// A received envelope. Owns the ZeroMQ frames it reads from; move-only.
class IncomingMessage {
 public:
  // Parses frames (segments) into a readable envelope, checking size, alignment, the
  // traversal limit and the protocol version.
  static StatusOr<IncomingMessage> FromFrames(std::vector<zmq::message_t> frames,
                                              const TransportOptions& options);
  // As above; on failure `*request_id` holds the envelope's request id when it could still
  // be read, so that a server can answer the bad request with an error.
  static StatusOr<IncomingMessage> FromFrames(std::vector<zmq::message_t> frames,
                                              const TransportOptions& options,
                                              std::optional<uint64_t>* request_id);
  IncomingMessage(IncomingMessage&&) noexcept;
  IncomingMessage& operator=(IncomingMessage&&) noexcept;
  ~IncomingMessage();

  proto::Envelope::Reader envelope() const;
  size_t byte_size() const;
  // The allow-list name of the key that sent this request ("scheduler", "worker-3"),
  // set by an RpcServer with keys; empty without CURVE.
  const std::string& peer() const;

 private:
  struct Impl;
  friend class RpcServer;  // sets the peer
  explicit IncomingMessage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An envelope being built. Large payloads can be placed without a copy either by
// building them in the message (init a Data field and write into it) or by referencing
// external memory that outlives the send (KeepAlive + Orphanage::referenceExternalData).
class OutgoingMessage {
 public:
  OutgoingMessage();
  ~OutgoingMessage();
  capnp::MessageBuilder& builder();
  proto::Envelope::Builder envelope();
  proto::Envelope::Body::Builder body() { return envelope().getBody(); }
  // A Data field of `bytes` that is sent without a copy and without being zeroed first:
  // memory from the sender's PayloadPool (small ones from the message itself), kept
  // alive until ZeroMQ has sent it. Adopt `orphan` into the field, then fill `data`
  // completely before the message is sent.
  struct Payload {
    capnp::Orphan<capnp::Data> orphan;
    kj::byte* data;
  };
  Payload NewPayload(size_t bytes);
  // Keeps `owner` alive until ZeroMQ has sent the last frame of this message.
  // (referenceExternalData needs word-aligned memory and reads up to the next word
  // boundary past the data's end, so that memory must be readable too.)
  void KeepAlive(std::shared_ptr<void> owner);
  // The message as ZeroMQ frames, one per segment, pointing at the segments (no copy);
  // every frame keeps this message's memory alive. For tests and tools that speak to a
  // server through a raw socket; the builder must not change while frames are alive.
  std::vector<zmq::message_t> ToFrames() const;

  struct Impl;  // opaque outside the transport's own files

 private:
  friend class RpcClient;
  friend class RpcServer;
  friend class Responder;
  std::shared_ptr<Impl> impl_;
};

// The header of an envelope; NewEnvelope builds a message with it set. RpcClient and
// Responder fill it for you; tests use this to forge requests (wrong version, other job).
struct EnvelopeHeader {
  uint16_t version = proto::PROTOCOL_VERSION;
  uint64_t job_id = 0;
  uint64_t request_id = 0;
  proto::Role role = proto::Role::CLIENT;
  int32_t rank = -1;
};
std::unique_ptr<OutgoingMessage> NewEnvelope(const EnvelopeHeader& header);

// "sparsePull", "echo", ... or "unknown kind 42": for log lines and error messages.
std::string BodyKindName(proto::Envelope::Body::Which kind);
// "server", "worker", ...
std::string RoleName(proto::Role role);

// Fills `body` with an Error from `status` and reads one back.
void SetError(proto::Envelope::Body::Builder body, const Status& status);
Status StatusFromError(proto::Error::Reader error);
// OK when `reply` is not an error reply; else the Status it carries.
Status ReplyStatus(const IncomingMessage& reply);

// Per-call policy. A call that gets no reply in `timeout` is sent again, up to
// `max_attempts` times in all, then completes with kDeadlineExceeded. Only idempotent
// requests should have max_attempts > 1. A timeout <= 0 waits forever.
//
// An Error reply of a retryable kind (Status::retryable(): the server refused the request
// without acting on it, e.g. unavailable for now) is sent again after `retry_backoff`,
// doubled at each retry up to `max_retry_backoff`, at most `max_error_retries` times; then
// the call completes with that error. Any other Error reply completes it at once. Such a
// retry is safe for any request whose server keeps that promise, idempotent or not.
struct CallOptions {
  std::chrono::milliseconds timeout{10000};
  int max_attempts = 1;
  int max_error_retries = 0;
  std::chrono::milliseconds retry_backoff{10};
  std::chrono::milliseconds max_retry_backoff{500};
};

// A DEALER socket to one server, with any number of requests in flight; replies are
// matched to requests by request id. Thread-safe: any thread may call NewRequest and
// Call/CallAsync. Callbacks run on the client's I/O thread and must not block; each call
// completes exactly once: with the reply, with the Status of an Error reply, with
// kDeadlineExceeded, or with kCancelled when the client is destroyed first. A call is sent
// again only as its CallOptions say (a timeout, or a retryable error reply). Do not
// destroy a client from one of its own callbacks.
class RpcClient {
 public:
  using Callback = std::function<void(StatusOr<IncomingMessage>)>;

  static StatusOr<std::unique_ptr<RpcClient>> Connect(const std::string& endpoint,
                                                      proto::Role role, int32_t rank,
                                                      const TransportOptions& options = {});
  ~RpcClient();

  // A request with version, job id, sender and a fresh request id set.
  std::unique_ptr<OutgoingMessage> NewRequest();
  void CallAsync(std::unique_ptr<OutgoingMessage> request, const CallOptions& options,
                 Callback done);
  std::future<StatusOr<IncomingMessage>> Call(std::unique_ptr<OutgoingMessage> request,
                                              const CallOptions& options);
  // Completes every call open now with `reason`, without waiting for its timeout (a late
  // reply is dropped), and every later call at once with it too: for a job that ended,
  // whose servers are gone and will not answer. Any thread; idempotent (the first reason
  // stays).
  void CancelAll(const Status& reason);
  const std::string& endpoint() const;
  void set_rank(int32_t rank);
  void set_generation(uint64_t generation);  // for requests built from now on

 private:
  struct Impl;
  explicit RpcClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The right to answer one request, possibly later and from another thread (barriers,
// sync aggregation). Exactly one of Send/SendError should be called; a Responder
// destroyed unanswered sends kInternal so the caller never waits for nothing.
class Responder {
 public:
  Responder(Responder&&) noexcept;
  Responder& operator=(Responder&&) noexcept;
  ~Responder();

  // A reply envelope with version, job id, sender and the request's id already set.
  std::unique_ptr<OutgoingMessage> NewReply();
  void Send(std::unique_ptr<OutgoingMessage> reply);
  void SendError(const Status& status);
  void SendAck(uint64_t count = 0);
  // Runs `observer(is_error)` once, on the thread that answers, as the answer goes out
  // (Send, SendError, SendAck, or the kInternal of a Responder dropped unanswered): where
  // a server times each request and counts its errors, however late it is answered.
  void OnAnswer(std::function<void(bool is_error)> observer);

 private:
  friend class RpcServer;
  struct Impl;
  explicit Responder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A ROUTER socket serving requests: one I/O thread owns the socket, handler threads run
// the handlers. Handle() and Bind() must be called before Start(); Handle, Bind, Start and
// Stop from one thread, counters() and set_rank() from any. Handlers run concurrently on
// handler_threads threads; a handler may move the IncomingMessage out of its argument to
// keep it (e.g. to reply with its memory via KeepAlive) and may keep the Responder to
// answer later from any thread. Do not Stop() from inside a handler.
class RpcServer {
 public:
  using Handler = std::function<void(IncomingMessage& request, Responder responder)>;

  explicit RpcServer(const TransportOptions& options, proto::Role role = proto::Role::SERVER,
                     int32_t rank = -1);
  ~RpcServer();  // Stop()s

  // Where a handler runs: on a handler thread (the default), or on the I/O thread itself,
  // which saves two thread hand-offs per request and suits handlers that never block
  // (ones that only check a request and hand it on, answering later).
  enum class Dispatch { kHandlerThread, kIoThread };
  void Handle(proto::Envelope::Body::Which kind, Handler handler,
              Dispatch dispatch = Dispatch::kHandlerThread);
  // Binds "tcp://host:port"; port 0 picks a free port. Returns the bound port (0 for a
  // non-tcp endpoint such as inproc://). May be called more than once before Start().
  StatusOr<int> Bind(const std::string& endpoint);
  Status Start();
  void Stop();
  void set_rank(int32_t rank);

  struct Counters {
    uint64_t requests = 0;
    uint64_t rejected = 0;   // malformed, oversized, wrong version/job, unknown kind
    uint64_t handler_errors = 0;  // handlers that threw (a bug: answered kInternal)
    // CURVE only: requests whose kind their sender's key may not send (authority.h), and
    // connections refused at the handshake (a key not of this job, or no CURVE at all).
    uint64_t unauthorized = 0;
    uint64_t handshakes_refused = 0;
  };
  Counters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtps
