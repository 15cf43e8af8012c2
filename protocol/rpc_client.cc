// RpcClient: a DEALER socket owned by one I/O thread that sends requests submitted from any
// thread, matches replies by request id, and resends or fails calls whose time is up.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <algorithm>
#include <string>
#include <thread>
#include <unordered_map>

#include <glog/logging.h>

#include "protocol/mailbox.h"
#include "protocol/transport_impl.h"
#include "protocol/zap_handler.h"

namespace mtps {
namespace {

using Clock = std::chrono::steady_clock;

// How many replies the I/O thread reads before it looks at new submissions again.
constexpr int kReceiveBatch = 64;

}  // namespace

struct RpcClient::Impl {
  // A call on its way from the submitting thread to the I/O thread.
  struct Submission {
    uint64_t request_id;
    proto::Envelope::Body::Which kind;
    std::shared_ptr<OutgoingMessage::Impl> message;
    CallOptions options;
    Callback done;
  };
  // A call in flight; owned by the I/O thread.
  struct Pending {
    proto::Envelope::Body::Which kind;
    std::shared_ptr<OutgoingMessage::Impl> message;  // kept for resending
    CallOptions options;
    Callback done;
    int attempts = 0;       // sends so far: timeouts' resends and error retries
    int error_retries = 0;  // of those, resends after a retryable error reply
    bool backing_off = false;  // refused for now: waits for its resend, not for a reply
  };
  struct Deadline {
    Clock::time_point when;
    uint64_t request_id;
    int attempt;  // stale once the call was sent again or completed
    bool resend = false;  // the end of a backoff, not a timeout
    bool operator>(const Deadline& other) const { return when > other.when; }
  };

  Impl(std::string e, proto::Role r, int32_t k, const TransportOptions& o)
      : endpoint(std::move(e)), role(r), rank(k), generation(o.generation), options(o),
        reply_options(ForReplies(o)) {}

  // Replies are checked like requests except for the job id: they come from the endpoint
  // this client chose, matched to its requests, and the scheduler (which serves nodes of
  // any spec, checking the spec hash at registration) answers with job id 0.
  static TransportOptions ForReplies(TransportOptions o) {
    o.job_id = 0;
    return o;
  }

  void IoLoop();
  void Begin(Submission& submission);
  void SendAttempt(uint64_t request_id, Pending& pending);
  void OnReply(std::vector<zmq::message_t> frames);
  void ExpireDeadlines(Clock::time_point now);
  void Complete(uint64_t request_id, StatusOr<IncomingMessage> result);
  void PruneDeadlines();
  long PollTimeoutMs(Clock::time_point now) const;

  const std::string endpoint;
  const proto::Role role;
  std::atomic<int32_t> rank;
  std::atomic<uint64_t> generation;
  const TransportOptions options;
  const TransportOptions reply_options;  // options without the job id check
  std::atomic<uint64_t> next_request_id{1};
  Mailbox<Submission> submissions;
  zmq::context_t context{1};
  zmq::socket_t socket;  // owned by the I/O thread once it runs
  std::atomic<bool> stopping{false};
  // CancelAll(): every open call and every later one completes with this reason.
  std::mutex cancel_mutex;
  std::optional<Status> cancel_reason;  // GUARDED_BY(cancel_mutex)
  std::atomic<bool> cancelled{false};        // set once, never cleared
  std::atomic<bool> sweep_pending{false};    // the I/O thread still has to end the open calls
  Status CancelReason();
  void CancelOpenCalls();
  std::thread io_thread;
  // Set by the I/O thread before it runs any callback: a callback's own CallAsync starts
  // its call right there instead of going through the mailbox.
  std::atomic<std::thread::id> io_thread_id;
  bool io_open = true;  // I/O thread only: false once the socket is closed

  // I/O thread only.
  std::unordered_map<uint64_t, Pending> pending;
  // A min-heap (std::push_heap with greater) of deadlines; entries of calls that completed
  // stay until they surface or until PruneDeadlines drops them, so the heap stays within a
  // small multiple of the calls in flight.
  std::vector<Deadline> deadlines;
  std::deque<uint64_t> unsent;  // refused by the socket for now (EAGAIN); sent on POLLOUT
};

void RpcClient::Impl::IoLoop() {
  zmq_pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, submissions.fd(), ZMQ_POLLIN, 0}};
  std::vector<Submission> batch;
  std::vector<zmq::message_t> frames;
  try {
    while (!stopping.load(std::memory_order_acquire)) {
      items[0].events = ZMQ_POLLIN | (unsent.empty() ? 0 : ZMQ_POLLOUT);
      transport_internal::Poll(
          items, 2, submissions.PrepareToWait() ? PollTimeoutMs(Clock::now()) : 0);
      if (items[1].revents & ZMQ_POLLIN) submissions.ClearWakeup();
      submissions.Drain(&batch);
      for (Submission& submission : batch) {
        if (cancelled.load(std::memory_order_acquire)) {
          submission.done(CancelReason());
        } else {
          Begin(submission);
        }
      }
      batch.clear();
      if (sweep_pending.exchange(false, std::memory_order_acq_rel)) CancelOpenCalls();
      if (items[0].revents & ZMQ_POLLIN) {
        for (int i = 0;
             i < kReceiveBatch && transport_internal::ReceiveMultipart(socket, nullptr, &frames);
             ++i) {
          OnReply(std::move(frames));
        }
      }
      while (!unsent.empty()) {
        auto it = pending.find(unsent.front());
        if (it != pending.end() &&
            !transport_internal::SendMessage(socket, it->second.message, nullptr)) {
          break;
        }
        unsent.pop_front();
      }
      ExpireDeadlines(Clock::now());
    }
  } catch (const zmq::error_t& e) {
    LOG(ERROR) << "RPC client of " << endpoint << ": I/O thread stops: " << e.what();
  }
  socket.close();
  io_open = false;
  // Nothing can complete any more: every call still open is cancelled, exactly once.
  const Status cancelled = Cancelled("RPC client of " + endpoint + " was shut down");
  for (Submission& submission : submissions.Close()) submission.done(cancelled);
  while (!pending.empty()) Complete(pending.begin()->first, cancelled);
}

Status RpcClient::Impl::CancelReason() {
  std::lock_guard<std::mutex> lock(cancel_mutex);
  return cancel_reason.value_or(Cancelled("RPC client of " + endpoint + " was cancelled"));
}

void RpcClient::Impl::CancelOpenCalls() {
  const Status reason = CancelReason();
  // A call posted before CancelAll() may still wait in the mailbox: it ends too, unsent.
  std::vector<Submission> queued;
  submissions.Drain(&queued);
  for (Submission& submission : queued) submission.done(reason);
  while (!pending.empty()) Complete(pending.begin()->first, reason);
}

long RpcClient::Impl::PollTimeoutMs(Clock::time_point now) const {
  if (deadlines.empty()) return -1;
  const auto left = deadlines.front().when - now;
  if (left <= Clock::duration::zero()) return 0;
  // Round up: waking before the deadline would only spin.
  return std::chrono::ceil<std::chrono::milliseconds>(left).count();
}

void RpcClient::Impl::Begin(Submission& submission) {
  auto [it, inserted] = pending.try_emplace(submission.request_id);
  if (!inserted) {
    submission.done(AlreadyExists("request id " + std::to_string(submission.request_id) +
                                  " is already in flight to " + endpoint));
    return;
  }
  Pending& call = it->second;
  call.kind = submission.kind;
  call.message = std::move(submission.message);
  call.options = submission.options;
  call.done = std::move(submission.done);
  SendAttempt(submission.request_id, call);
}

void RpcClient::Impl::SendAttempt(uint64_t request_id, Pending& call) {
  ++call.attempts;
  if (!transport_internal::SendMessage(socket, call.message, nullptr)) {
    unsent.push_back(request_id);
  }
  if (call.options.timeout.count() > 0) {
    deadlines.push_back(Deadline{Clock::now() + call.options.timeout, request_id, call.attempts});
    std::push_heap(deadlines.begin(), deadlines.end(), std::greater<Deadline>());
  }
}

void RpcClient::Impl::OnReply(std::vector<zmq::message_t> frames) {
  std::optional<uint64_t> request_id;
  StatusOr<IncomingMessage> reply =
      IncomingMessage::FromFrames(std::move(frames), reply_options, &request_id);
  if (!reply.ok()) {
    if (request_id.has_value() && pending.count(*request_id) != 0) {
      Complete(*request_id, reply.status().WithContext("bad reply from " + endpoint));
    } else {
      LOG(WARNING) << "dropped an unreadable reply from " << endpoint << ": " << reply.status();
    }
    return;
  }
  proto::Envelope::Reader envelope = reply->envelope();
  const uint64_t id = envelope.getRequestId();
  if (pending.count(id) == 0) {
    VLOG(1) << "late or duplicate reply to request " << id << " from " << endpoint;
    return;
  }
  if (envelope.getBody().which() == proto::Envelope::Body::ERROR) {
    Status error = StatusFromError(envelope.getBody().getError());
    Pending& call = pending.find(id)->second;
    // An earlier attempt's refusal (it timed out and was sent again): the resend is due.
    if (error.retryable() && call.backing_off) return;
    if (error.retryable() && call.error_retries < call.options.max_error_retries) {
      // Refused for now, nothing done: the same request goes again after a backoff.
      const int shift = std::min(call.error_retries, 16);
      const auto backoff = std::min(call.options.retry_backoff * (1 << shift),
                                    call.options.max_retry_backoff);
      ++call.error_retries;
      call.backing_off = true;
      VLOG(1) << "request " << id << " to " << endpoint << " refused for now (" << error
              << "); sending it again in " << backoff.count() << " ms";
      deadlines.push_back(Deadline{Clock::now() + backoff, id, call.attempts, /*resend=*/true});
      std::push_heap(deadlines.begin(), deadlines.end(), std::greater<Deadline>());
      return;
    }
    Complete(id, std::move(error));
  } else {
    Complete(id, std::move(reply));
  }
}

void RpcClient::Impl::ExpireDeadlines(Clock::time_point now) {
  while (!deadlines.empty() && deadlines.front().when <= now) {
    std::pop_heap(deadlines.begin(), deadlines.end(), std::greater<Deadline>());
    const Deadline deadline = deadlines.back();
    deadlines.pop_back();
    auto it = pending.find(deadline.request_id);
    if (it == pending.end() || it->second.attempts != deadline.attempt) continue;
    Pending& call = it->second;
    if (deadline.resend) {
      call.backing_off = false;
      SendAttempt(deadline.request_id, call);
      continue;
    }
    if (call.backing_off) continue;  // its attempt was answered; the resend is due later
    if (call.attempts - call.error_retries < call.options.max_attempts) {
      VLOG(1) << "request " << deadline.request_id << " to " << endpoint
              << " timed out; sending attempt " << call.attempts + 1;
      SendAttempt(deadline.request_id, call);
      continue;
    }
    Complete(deadline.request_id,
             DeadlineExceeded("no reply from " + endpoint + " to " + BodyKindName(call.kind) +
                              " request " + std::to_string(deadline.request_id) + " after " +
                              std::to_string(call.attempts) + " attempt(s) of " +
                              std::to_string(call.options.timeout.count()) + " ms"));
  }
}

void RpcClient::Impl::Complete(uint64_t request_id, StatusOr<IncomingMessage> result) {
  auto node = pending.extract(request_id);
  if (node.empty()) return;
  if (deadlines.size() > 2 * pending.size() + 1024) PruneDeadlines();
  try {
    node.mapped().done(std::move(result));
  } catch (const std::exception& e) {
    LOG(ERROR) << "callback of request " << request_id << " to " << endpoint
               << " threw: " << e.what();
  }
}

void RpcClient::Impl::PruneDeadlines() {
  std::erase_if(deadlines, [this](const Deadline& d) {
    auto it = pending.find(d.request_id);
    return it == pending.end() || it->second.attempts != d.attempt;
  });
  std::make_heap(deadlines.begin(), deadlines.end(), std::greater<Deadline>());
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcClient::~RpcClient() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->submissions.Wake();
  impl_->io_thread.join();
  impl_->context.close();
}

StatusOr<std::unique_ptr<RpcClient>> RpcClient::Connect(const std::string& endpoint,
                                                        proto::Role role, int32_t rank,
                                                        const TransportOptions& options) {
  TransportOptions with_pool = options;
  if (with_pool.payload_pool == nullptr) with_pool.payload_pool = std::make_shared<PayloadPool>();
  auto impl = std::make_unique<Impl>(endpoint, role, rank, with_pool);
  try {
    impl->socket = zmq::socket_t(impl->context, zmq::socket_type::dealer);
    transport_internal::ConfigureSocket(impl->socket, options);
    if (options.keys != nullptr) ConfigureCurveClient(impl->socket, *options.keys);
    impl->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgument("cannot connect an RPC client to '" + endpoint + "': " + e.what());
  }
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] { raw->IoLoop(); });
  impl->io_thread_id.store(impl->io_thread.get_id(), std::memory_order_release);
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

std::unique_ptr<OutgoingMessage> RpcClient::NewRequest() {
  auto request = NewEnvelope(EnvelopeHeader{
      proto::PROTOCOL_VERSION, impl_->options.job_id,
      impl_->next_request_id.fetch_add(1, std::memory_order_relaxed), impl_->role,
      impl_->rank.load(std::memory_order_relaxed)});
  if (const uint64_t g = impl_->generation.load(std::memory_order_relaxed); g != 0) {
    request->envelope().setSenderGeneration(g);
  }
  request->impl_->pool = impl_->options.payload_pool;
  return request;
}

void RpcClient::CallAsync(std::unique_ptr<OutgoingMessage> request, const CallOptions& options,
                          Callback done) {
  proto::Envelope::Builder envelope = request->envelope();
  // The server would cut the connection on a frame this large (ZMQ_MAXMSGSIZE) or refuse
  // the message: say so here, where the caller can still split it.
  const size_t bytes = request->impl_->builder.sizeInWords() * sizeof(capnp::word);
  if (bytes > impl_->options.max_message_bytes) {
    done(ResourceExhausted(BodyKindName(envelope.getBody().which()) + " request of " +
                           std::to_string(bytes) + " bytes exceeds the " +
                           std::to_string(impl_->options.max_message_bytes) +
                           "-byte message limit; nothing was sent"));
    return;
  }
  if (impl_->cancelled.load(std::memory_order_acquire)) {
    done(impl_->CancelReason());
    return;
  }
  Impl::Submission submission{envelope.getRequestId(), envelope.getBody().which(),
                              std::move(request->impl_), options, std::move(done)};
  if (std::this_thread::get_id() == impl_->io_thread_id.load(std::memory_order_acquire)) {
    if (impl_->io_open) {
      impl_->Begin(submission);
    } else {
      submission.done(Cancelled("RPC client of " + impl_->endpoint + " was shut down"));
    }
    return;
  }
  if (!impl_->submissions.Post(std::move(submission))) {
    submission.done(Cancelled("RPC client of " + impl_->endpoint + " was shut down"));
  }
}

std::future<StatusOr<IncomingMessage>> RpcClient::Call(std::unique_ptr<OutgoingMessage> request,
                                                       const CallOptions& options) {
  auto promise = std::make_shared<std::promise<StatusOr<IncomingMessage>>>();
  std::future<StatusOr<IncomingMessage>> result = promise->get_future();
  CallAsync(std::move(request), options,
            [promise](StatusOr<IncomingMessage> reply) { promise->set_value(std::move(reply)); });
  return result;
}

const std::string& RpcClient::endpoint() const { return impl_->endpoint; }

void RpcClient::CancelAll(const Status& reason) {
  {
    std::lock_guard<std::mutex> lock(impl_->cancel_mutex);
    if (!impl_->cancel_reason) impl_->cancel_reason = reason;
  }
  // A call posted while this runs is drained after `cancelled` is set (ended unsent) or
  // was begun before it (ended by the sweep).
  impl_->cancelled.store(true, std::memory_order_release);
  impl_->sweep_pending.store(true, std::memory_order_release);
  impl_->submissions.Wake();
}

void RpcClient::set_rank(int32_t rank) { impl_->rank.store(rank, std::memory_order_relaxed); }
void RpcClient::set_generation(uint64_t generation) {
  impl_->generation.store(generation, std::memory_order_relaxed);
}

}  // namespace mtps
