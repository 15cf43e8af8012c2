// RpcServer and Responder: a ROUTER socket owned by one I/O thread that checks each request,
// hands it to a handler on a worker thread and sends the replies that come back.
#include <atomic>
#include <string>
#include <thread>

#include <glog/logging.h>
#include <kj/exception.h>

#include "protocol/authority.h"
#include "protocol/mailbox.h"
#include "protocol/transport_impl.h"
#include "protocol/worker_threads.h"
#include "protocol/zap_handler.h"

namespace mtps {
namespace {

// A reply on its way from a handler thread to the I/O thread.
struct PendingReply {
  zmq::message_t identity;  // of the requesting peer (ROUTER routing frame)
  std::shared_ptr<OutgoingMessage::Impl> message;
};

// How many requests the I/O thread reads before it looks at the replies again.
constexpr int kReceiveBatch = 64;
// How long a stopping server's socket may still deliver the replies already answered (a
// shutdown's acknowledgement above all) to peers that are reading; bounded, so that a gone
// peer cannot hold the exit.
constexpr int kStopLingerMs = 500;

// The part of a server that Responders share: they may outlive the server.
struct ServerCore {
  ServerCore(const TransportOptions& o, proto::Role r, int32_t k)
      : options(WithPool(o)), role(r), rank(k) {}
  static TransportOptions WithPool(TransportOptions o) {
    if (o.payload_pool == nullptr) o.payload_pool = std::make_shared<PayloadPool>();
    return o;
  }
  const TransportOptions options;
  const proto::Role role;
  std::atomic<int32_t> rank;
  Mailbox<PendingReply> outbox;
  // Set by the I/O thread before it reads the first request. Replies made on that thread
  // (handlers run inline, or a handler answering a request it held) skip the mailbox.
  std::atomic<std::thread::id> io_thread_id;
  std::vector<PendingReply> io_thread_replies;  // touched by the I/O thread only
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> handler_errors{0};
  std::atomic<uint64_t> unauthorized{0};

  EnvelopeHeader ReplyHeader(uint64_t request_id) const {
    return EnvelopeHeader{proto::PROTOCOL_VERSION, options.job_id, request_id, role,
                          rank.load(std::memory_order_relaxed)};
  }
};

}  // namespace

// ---- Responder ----

struct Responder::Impl {
  std::shared_ptr<ServerCore> core;
  zmq::message_t identity;
  uint64_t request_id = 0;
  proto::Envelope::Body::Which kind{};
  bool answered = false;
  std::function<void(bool is_error)> on_answer;
};

Responder::Responder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Responder::Responder(Responder&&) noexcept = default;

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    Responder previous(std::move(*this));  // answers its request on the way out, if unanswered
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Responder::~Responder() {
  if (impl_ != nullptr && !impl_->answered) {
    SendError(Internal("the handler of " + BodyKindName(impl_->kind) + " request " +
                       std::to_string(impl_->request_id) + " dropped it without an answer"));
  }
}

std::unique_ptr<OutgoingMessage> Responder::NewReply() {
  CHECK(impl_ != nullptr) << "NewReply on a moved-from Responder";
  auto reply = NewEnvelope(impl_->core->ReplyHeader(impl_->request_id));
  reply->impl_->pool = impl_->core->options.payload_pool;
  return reply;
}

void Responder::Send(std::unique_ptr<OutgoingMessage> reply) {
  CHECK(impl_ != nullptr) << "Send on a moved-from Responder";
  if (impl_->answered) {
    LOG(DFATAL) << BodyKindName(impl_->kind) << " request " << impl_->request_id
                << " answered twice; the second reply is dropped";
    return;
  }
  impl_->answered = true;
  if (impl_->on_answer) {
    impl_->on_answer(reply->envelope().getBody().which() == proto::Envelope::Body::ERROR);
  }
  PendingReply pending{std::move(impl_->identity), std::move(reply->impl_)};
  ServerCore& core = *impl_->core;
  if (std::this_thread::get_id() == core.io_thread_id.load(std::memory_order_acquire)) {
    core.io_thread_replies.push_back(std::move(pending));
    return;
  }
  // After Stop() the mailbox is closed and the reply is dropped: no one can send it.
  core.outbox.Post(std::move(pending));
}

void Responder::SendError(const Status& status) {
  auto reply = NewReply();
  SetError(reply->body(), status);
  Send(std::move(reply));
}

void Responder::OnAnswer(std::function<void(bool is_error)> observer) {
  CHECK(impl_ != nullptr) << "OnAnswer on a moved-from Responder";
  impl_->on_answer = std::move(observer);
}

void Responder::SendAck(uint64_t count) {
  auto reply = NewReply();
  reply->body().initAck().setCount(count);
  Send(std::move(reply));
}

// ---- RpcServer ----

struct RpcServer::Impl {
  struct Request {
    zmq::message_t identity;
    IncomingMessage message;
    const Handler* handler;
  };

  Impl(const TransportOptions& options, proto::Role role, int32_t rank)
      : core(std::make_shared<ServerCore>(options, role, rank)) {}

  void IoLoop();
  void Accept(zmq::message_t identity, std::vector<zmq::message_t> frames);
  Status Authorize(const std::string& peer, proto::Envelope::Reader envelope) const;
  void Reject(zmq::message_t& identity, std::optional<uint64_t> request_id,
              const Status& status);
  void Serve(Request& request);
  void SendReplies(std::vector<PendingReply>& replies);

  std::shared_ptr<ServerCore> core;
  std::vector<Handler> handlers;  // by Body::Which; empty = none; fixed after Start()
  std::vector<bool> on_io_thread;  // by Body::Which: Dispatch::kIoThread
  zmq::context_t context{1};
  std::unique_ptr<ZapHandler> zap;  // with CURVE: admits the job's keys to `context`
  zmq::socket_t socket;  // owned by the I/O thread after Start()
  bool bound = false;
  bool started = false;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::unique_ptr<WorkerThreads<Request>> workers;
  std::thread io_thread;
};

void RpcServer::Impl::IoLoop() {
  zmq_pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, core->outbox.fd(), ZMQ_POLLIN, 0}};
  std::vector<PendingReply> replies;
  zmq::message_t identity;
  std::vector<zmq::message_t> frames;
  core->io_thread_id.store(std::this_thread::get_id(), std::memory_order_release);
  try {
    while (!stopping.load(std::memory_order_acquire)) {
      transport_internal::Poll(items, 2, core->outbox.PrepareToWait() ? -1 : 0);
      if (items[1].revents & ZMQ_POLLIN) core->outbox.ClearWakeup();
      core->outbox.Drain(&replies);
      SendReplies(replies);
      if (items[0].revents & ZMQ_POLLIN) {
        for (int i = 0; i < kReceiveBatch &&
                        transport_internal::ReceiveMultipart(socket, &identity, &frames);
             ++i) {
          Accept(std::move(identity), std::move(frames));
        }
        SendReplies(core->io_thread_replies);
      }
    }
    // Answered before the stop, sent before the close: without this a scheduler waited its
    // whole shutdown timeout for an ack the server had given but never sent.
    core->outbox.Drain(&replies);
    SendReplies(replies);
    SendReplies(core->io_thread_replies);
    socket.set(zmq::sockopt::linger, kStopLingerMs);
  } catch (const zmq::error_t& e) {
    LOG(ERROR) << "RPC server I/O thread stops: " << e.what();
  }
  core->io_thread_id.store(std::thread::id(), std::memory_order_release);  // ids are reused
  core->io_thread_replies.clear();
  socket.close();
}

void RpcServer::Impl::SendReplies(std::vector<PendingReply>& replies) {
  for (PendingReply& reply : replies) {
    transport_internal::SendMessage(socket, reply.message, &reply.identity);
  }
  replies.clear();
}

void RpcServer::Impl::Accept(zmq::message_t identity, std::vector<zmq::message_t> frames) {
  // The ZAP handler named the connection's key; libzmq stamps that name on each frame.
  std::string peer;
  if (core->options.keys != nullptr && !frames.empty()) {
    if (const char* user_id = zmq_msg_gets(frames[0].handle(), "User-Id")) peer = user_id;
  }
  std::optional<uint64_t> request_id;
  StatusOr<IncomingMessage> message =
      IncomingMessage::FromFrames(std::move(frames), core->options, &request_id);
  if (!message.ok()) {
    Reject(identity, request_id, message.status());
    return;
  }
  proto::Envelope::Reader envelope = message->envelope();
  if (core->options.keys != nullptr) {
    Status allowed = Authorize(peer, envelope);
    if (!allowed.ok()) {
      core->unauthorized.fetch_add(1, std::memory_order_relaxed);
      Reject(identity, envelope.getRequestId(), allowed);
      return;
    }
    message->impl_->peer = std::move(peer);
  }
  if (core->options.fence != nullptr) {
    if (Status fenced = core->options.fence->Check(envelope); !fenced.ok()) {
      Reject(identity, envelope.getRequestId(), fenced);
      return;
    }
  }
  const auto kind = envelope.getBody().which();
  const auto index = static_cast<size_t>(kind);
  if (index >= handlers.size() || !handlers[index]) {
    Reject(identity, envelope.getRequestId(),
           Unimplemented("no handler for " + BodyKindName(kind) + " requests on this " +
                         RoleName(core->role)));
    return;
  }
  core->requests.fetch_add(1, std::memory_order_relaxed);
  Request request{std::move(identity), std::move(*message), &handlers[index]};
  if (workers == nullptr || on_io_thread[index]) {
    Serve(request);  // handler_threads == 0, or a handler that never blocks
  } else {
    workers->Submit(std::move(request));
  }
}

Status RpcServer::Impl::Authorize(const std::string& peer,
                                  proto::Envelope::Reader envelope) const {
  const KeyHolder* holder = core->options.keys->FindByName(peer);
  if (holder == nullptr) {
    // Only a socket that lost its CURVE options could get here: refuse, never serve.
    return PermissionDenied("request from a peer without an authenticated key");
  }
  return AuthorizeRequest(*holder, envelope);
}

void RpcServer::Impl::Reject(zmq::message_t& identity, std::optional<uint64_t> request_id,
                             const Status& status) {
  core->rejected.fetch_add(1, std::memory_order_relaxed);
  if (!request_id.has_value()) {
    LOG(WARNING) << "dropped an unreadable request: " << status;
    return;
  }
  LOG(WARNING) << "refused request " << *request_id << ": " << status;
  auto reply = NewEnvelope(core->ReplyHeader(*request_id));
  SetError(reply->body(), status);
  transport_internal::SendMessage(socket, reply->impl_, &identity);
}

void RpcServer::Impl::Serve(Request& request) {
  // Everything read from the request is read here, before the handler runs: a handler may
  // move the message away (and free it) before it throws, so the catch blocks below must
  // never look at it.
  proto::Envelope::Reader envelope = request.message.envelope();
  const uint64_t request_id = envelope.getRequestId();
  const auto kind = envelope.getBody().which();
  auto responder_impl = std::make_unique<Responder::Impl>();
  responder_impl->core = core;
  responder_impl->identity = std::move(request.identity);
  responder_impl->request_id = request_id;
  responder_impl->kind = kind;
  std::string error;
  try {
    (*request.handler)(request.message, Responder(std::move(responder_impl)));
    return;
  } catch (const kj::Exception& e) {
    error = e.getDescription().cStr();
  } catch (const std::exception& e) {
    error = e.what();
  }
  // The handler's Responder, unwound unanswered, has sent kInternal.
  core->handler_errors.fetch_add(1, std::memory_order_relaxed);
  LOG(ERROR) << "handler of " << BodyKindName(kind) << " request " << request_id
             << " threw: " << error;
}

RpcServer::RpcServer(const TransportOptions& options, proto::Role role, int32_t rank)
    : impl_(std::make_unique<Impl>(options, role, rank)) {}

RpcServer::~RpcServer() { Stop(); }

void RpcServer::Handle(proto::Envelope::Body::Which kind, Handler handler, Dispatch dispatch) {
  CHECK(!impl_->started) << "RpcServer::Handle(" << BodyKindName(kind) << ") after Start()";
  const auto index = static_cast<size_t>(kind);
  if (index >= impl_->handlers.size()) {
    impl_->handlers.resize(index + 1);
    impl_->on_io_thread.resize(index + 1, false);
  }
  impl_->handlers[index] = std::move(handler);
  impl_->on_io_thread[index] = dispatch == Dispatch::kIoThread;
}

StatusOr<int> RpcServer::Bind(const std::string& endpoint) {
  if (impl_->started) return FailedPrecondition("Bind(" + endpoint + ") after Start()");
  try {
    if (!impl_->bound) {
      const std::shared_ptr<const JobKeys>& keys = impl_->core->options.keys;
      impl_->socket = zmq::socket_t(impl_->context, zmq::socket_type::router);
      transport_internal::ConfigureSocket(impl_->socket, impl_->core->options);
      if (keys != nullptr) {
        ConfigureCurveServer(impl_->socket, *keys);
        // Before the socket binds: no handshake may find the handler missing (libzmq
        // would then admit any key).
        if (impl_->zap == nullptr) {
          StatusOr<std::unique_ptr<ZapHandler>> zap =
              ZapHandler::Start(impl_->context, keys, impl_->socket);
          if (!zap.ok()) {
            impl_->socket.close();
            return zap.status().WithContext("cannot bind RPC server to '" + endpoint + "'");
          }
          impl_->zap = std::move(*zap);
        }
      }
    }
    impl_->socket.bind(endpoint);
    impl_->bound = true;
    const std::string bound = impl_->socket.get(zmq::sockopt::last_endpoint);
    const size_t colon = bound.rfind(':');
    if (bound.rfind("tcp://", 0) != 0 || colon == std::string::npos) return 0;
    return std::stoi(bound.substr(colon + 1));
  } catch (const zmq::error_t& e) {
    const Status status = e.num() == EADDRINUSE
                              ? Unavailable(std::string("address in use: ") + e.what())
                              : InvalidArgument(e.what());
    return status.WithContext("cannot bind RPC server to '" + endpoint + "'");
  }
}

Status RpcServer::Start() {
  if (impl_->started) return FailedPrecondition("RpcServer::Start() called twice");
  if (!impl_->bound) return FailedPrecondition("RpcServer::Start() before a successful Bind()");
  impl_->started = true;
  Impl* impl = impl_.get();
  if (impl_->core->options.handler_threads > 0) {
    impl_->workers = std::make_unique<WorkerThreads<Impl::Request>>(
        impl_->core->options.handler_threads, [impl](Impl::Request& r) { impl->Serve(r); });
  }
  impl_->io_thread = std::thread([impl] { impl->IoLoop(); });
  return Status::OK();
}

void RpcServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->io_thread.joinable()) {
    impl_->stopping.store(true, std::memory_order_release);
    impl_->core->outbox.Wake();
    impl_->io_thread.join();  // it closes the socket
  } else {
    // Also a socket whose Bind() failed: an open socket makes context.close() wait forever.
    impl_->socket.close();
  }
  impl_->core->outbox.Close();  // replies of handlers still running are dropped
  if (impl_->workers != nullptr) impl_->workers->Stop();
  if (impl_->zap != nullptr) impl_->zap->Stop();  // closes its socket: context.close() waits for it
  impl_->context.close();
}

void RpcServer::set_rank(int32_t rank) {
  impl_->core->rank.store(rank, std::memory_order_relaxed);
}

RpcServer::Counters RpcServer::counters() const {
  return Counters{impl_->core->requests.load(std::memory_order_relaxed),
                  impl_->core->rejected.load(std::memory_order_relaxed),
                  impl_->core->handler_errors.load(std::memory_order_relaxed),
                  impl_->core->unauthorized.load(std::memory_order_relaxed),
                  impl_->zap != nullptr ? impl_->zap->failed_handshakes() : 0};
}

}  // namespace mtps
