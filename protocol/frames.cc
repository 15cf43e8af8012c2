// OutgoingMessage and IncomingMessage: Cap'n Proto segments to ZeroMQ frames without a
// copy, and frames back to a checked, readable envelope.
#include <algorithm>
#include <cstring>
#include <string>

#include <glog/logging.h>
#include <kj/exception.h>

#include "protocol/transport_impl.h"

namespace mtps {
namespace {

// Cap'n Proto's own stream reader refuses more segments than this; so do we.
constexpr size_t kMaxSegments = 512;
// How much of a refused message is read to find its request id.
constexpr size_t kPeekBytes = 1024;

void ReleaseSegment(void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<OutgoingMessage::Impl>*>(hint);
}

// A frame that points at `segment` and keeps `owner` alive until ZeroMQ drops it.
void InitSegmentFrame(zmq_msg_t* frame, kj::ArrayPtr<const capnp::word> segment,
                      const std::shared_ptr<OutgoingMessage::Impl>& owner) {
  auto* hint = new std::shared_ptr<OutgoingMessage::Impl>(owner);
  // ZeroMQ never writes to the data of an outgoing message.
  void* data = const_cast<capnp::word*>(segment.begin());
  if (zmq_msg_init_data(frame, data, segment.size() * sizeof(capnp::word), &ReleaseSegment,
                        hint) != 0) {
    delete hint;
    throw zmq::error_t();
  }
}

// Reads the header and checks the whole message: bounds of every pointer, traversal and
// nesting limits, version, job. `check_contents` false: only the request id is read.
Status CheckEnvelope(proto::Envelope::Reader envelope, const TransportOptions& options,
                     bool check_contents, std::optional<uint64_t>* request_id) {
  if (request_id != nullptr) *request_id = envelope.getRequestId();
  if (!check_contents) return Status::OK();
  if (envelope.getVersion() != proto::PROTOCOL_VERSION) {
    return VersionMismatch("protocol version " + std::to_string(envelope.getVersion()) +
                           " from " + RoleName(envelope.getSender().getRole()) + " rank " +
                           std::to_string(envelope.getSender().getRank()) +
                           ", this node speaks version " +
                           std::to_string(proto::PROTOCOL_VERSION));
  }
  // A sender's job id 0 is no wildcard. The refusal names no job id: ours is the spec
  // hash, and echoing the sender's would help no one but a prober.
  if (options.job_id != 0 && envelope.getJobId() != options.job_id) {
    return FailedPrecondition("message of another job from " +
                              RoleName(envelope.getSender().getRole()) + " rank " +
                              std::to_string(envelope.getSender().getRank()) +
                              ": its job id is not this node's (every node must read the "
                              "same job spec)");
  }
  // Visits every pointer (throws on any out-of-bounds one) and counts the words a full
  // read takes, which for a hostile message (pointers sharing one target) can be far more
  // than its size.
  const uint64_t words = envelope.totalSize().wordCount;
  if (words > options.traversal_limit_words) {
    return ResourceExhausted("reading the message takes " + std::to_string(words) +
                             " words, over the traversal limit of " +
                             std::to_string(options.traversal_limit_words));
  }
  return Status::OK();
}

}  // namespace

// ---- OutgoingMessage ----

OutgoingMessage::OutgoingMessage() : impl_(std::make_shared<Impl>()) {}
OutgoingMessage::~OutgoingMessage() = default;

capnp::MessageBuilder& OutgoingMessage::builder() { return impl_->builder; }

proto::Envelope::Builder OutgoingMessage::envelope() {
  return impl_->builder.getRoot<proto::Envelope>();
}

OutgoingMessage::Payload OutgoingMessage::NewPayload(size_t bytes) {
  capnp::Orphanage orphanage = impl_->builder.getOrphanage();
  if (bytes < PayloadPool::kMinBytes || impl_->pool == nullptr) {
    // Zeroing a small field costs less than a pool round trip.
    capnp::Orphan<capnp::Data> orphan = orphanage.newOrphan<capnp::Data>(bytes);
    kj::byte* data = orphan.get().begin();
    return Payload{kj::mv(orphan), data};
  }
  std::shared_ptr<kj::byte> buffer = impl_->pool->Acquire(bytes);
  kj::byte* data = buffer.get();
  impl_->keep_alive.push_back(std::move(buffer));
  return Payload{orphanage.referenceExternalData(capnp::Data::Reader(data, bytes)), data};
}

void OutgoingMessage::KeepAlive(std::shared_ptr<void> owner) {
  impl_->keep_alive.push_back(std::move(owner));
}

std::vector<zmq::message_t> OutgoingMessage::ToFrames() const {
  auto segments = impl_->builder.getSegmentsForOutput();
  std::vector<zmq::message_t> frames(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    zmq_msg_close(frames[i].handle());  // re-initialized below
    InitSegmentFrame(frames[i].handle(), segments[i], impl_);
  }
  return frames;
}

// ---- IncomingMessage ----

IncomingMessage::IncomingMessage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IncomingMessage::IncomingMessage(IncomingMessage&&) noexcept = default;
IncomingMessage& IncomingMessage::operator=(IncomingMessage&&) noexcept = default;
IncomingMessage::~IncomingMessage() = default;

proto::Envelope::Reader IncomingMessage::envelope() const {
  return impl_->envelope;
}

size_t IncomingMessage::byte_size() const { return impl_->bytes; }

const std::string& IncomingMessage::peer() const { return impl_->peer; }

StatusOr<IncomingMessage> IncomingMessage::FromFrames(std::vector<zmq::message_t> frames,
                                                      const TransportOptions& options) {
  return FromFrames(std::move(frames), options, nullptr);
}

StatusOr<IncomingMessage> IncomingMessage::FromFrames(std::vector<zmq::message_t> frames,
                                                      const TransportOptions& options,
                                                      std::optional<uint64_t>* request_id) {
  if (request_id != nullptr) request_id->reset();
  const size_t count = frames.size();
  if (count == 0) return DataLoss("empty message: no Cap'n Proto segment");
  if (count > kMaxSegments) {
    return ResourceExhausted("message of " + std::to_string(count) +
                             " frames; at most " + std::to_string(kMaxSegments) +
                             " Cap'n Proto segments are accepted");
  }

  // Layout first: each frame must be whole 8-byte words, the total within the limit.
  Status error;
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t size = frames[i].size();
    if (size % sizeof(capnp::word) != 0 && error.ok()) {
      error = DataLoss("frame " + std::to_string(i) + " of " + std::to_string(count) + " is " +
                       std::to_string(size) +
                       " bytes, not a whole number of 8-byte Cap'n Proto words");
    }
    total += size;
  }
  if (error.ok() && total > options.max_message_bytes) {
    error = ResourceExhausted("message of " + std::to_string(total) + " bytes exceeds the " +
                              std::to_string(options.max_message_bytes) + "-byte limit");
  }

  auto impl = std::make_unique<Impl>();
  impl->frames = std::move(frames);
  impl->bytes = total;
  // A bad message still gets the start of its first segment read, where a builder puts the
  // envelope's header, for the request id of the error reply.
  const size_t usable = error.ok() ? count : (impl->frames[0].size() % 8 == 0 ? 1 : 0);
  impl->segments.reserve(usable);
  for (size_t i = 0; i < usable; ++i) {
    const zmq::message_t& frame = impl->frames[i];
    const size_t bytes = error.ok() ? frame.size() : std::min(frame.size(), kPeekBytes);
    const size_t words = bytes / sizeof(capnp::word);
    const void* data = frame.data();
    if (reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) != 0) {
      // ZeroMQ packs small frames into its receive buffer at any offset.
      kj::Array<capnp::word> copy = kj::heapArray<capnp::word>(words);
      std::memcpy(copy.begin(), data, bytes);
      impl->segments.emplace_back(copy.begin(), words);
      impl->aligned_copies.push_back(std::move(copy));
    } else {
      impl->segments.emplace_back(static_cast<const capnp::word*>(data), words);
    }
  }
  if (usable == 0) return error;

  // The check reads the whole message once (at most traversal_limit_words, else refused);
  // the handlers get a budget of traversal_limit_words of their own on top.
  capnp::ReaderOptions reader_options;
  reader_options.traversalLimitInWords =
      options.traversal_limit_words > UINT64_MAX / 2 ? UINT64_MAX
                                                     : 2 * options.traversal_limit_words;
  const kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments(impl->segments.data(),
                                                                    impl->segments.size());
  try {
    impl->reader.emplace(segments, reader_options);
    impl->envelope = impl->reader->getRoot<proto::Envelope>();
    Status checked = CheckEnvelope(impl->envelope, options, error.ok(), request_id);
    if (error.ok()) error = std::move(checked);
  } catch (const kj::Exception& e) {
    const std::string what = e.getDescription().cStr();
    if (!error.ok()) {
      // Keep the first problem found.
    } else if (what.find("traversal limit") != std::string::npos) {
      // Cap'n Proto's own limiter (at twice ours) stopped the check first.
      error = ResourceExhausted("reading the message takes over " +
                                std::to_string(reader_options.traversalLimitInWords) +
                                " words, over the traversal limit of " +
                                std::to_string(options.traversal_limit_words));
    } else {
      error = DataLoss("malformed Cap'n Proto message (" + std::to_string(total) + " bytes in " +
                       std::to_string(count) + " frames): " + what);
    }
  }
  if (!error.ok()) return error;
  return IncomingMessage(std::move(impl));
}

// ---- frames on sockets ----

namespace transport_internal {

bool SendMessage(zmq::socket_t& socket, const std::shared_ptr<OutgoingMessage::Impl>& message,
                 zmq::message_t* identity) {
  auto segments = message->builder.getSegmentsForOutput();
  if (identity != nullptr) {
    if (zmq_msg_send(identity->handle(), socket.handle(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
      if (zmq_errno() == EAGAIN) return false;
      throw zmq::error_t();
    }
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    zmq_msg_t frame;
    InitSegmentFrame(&frame, segments[i], message);
    const int flags = (i + 1 < segments.size() ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT;
    if (zmq_msg_send(&frame, socket.handle(), flags) < 0) {
      const int err = zmq_errno();
      zmq_msg_close(&frame);
      // Only the first part of a multipart message can meet the high-water mark.
      if (err == EAGAIN && i == 0 && identity == nullptr) return false;
      throw zmq::error_t();
    }
  }
  return true;
}

bool ReceiveMultipart(zmq::socket_t& socket, zmq::message_t* identity,
                      std::vector<zmq::message_t>* frames) {
  frames->clear();
  zmq::message_t first;
  if (!socket.recv(first, zmq::recv_flags::dontwait)) return false;
  bool more = first.more();
  if (identity != nullptr) {
    *identity = std::move(first);
  } else {
    frames->push_back(std::move(first));
  }
  while (more) {
    zmq::message_t part;
    // The parts of a multipart message arrive together: this never waits.
    (void)socket.recv(part, zmq::recv_flags::none);
    more = part.more();
    frames->push_back(std::move(part));
  }
  return true;
}

void Poll(zmq_pollitem_t* items, int count, long timeout_ms) {
  while (zmq_poll(items, count, timeout_ms) < 0) {
    if (zmq_errno() != EINTR) throw zmq::error_t();
  }
}

void ConfigureSocket(zmq::socket_t& socket, const TransportOptions& options) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, kReceiveHighWaterMark);
  const size_t max_frame = std::min<size_t>(options.max_message_bytes, INT64_MAX);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame));
}

}  // namespace transport_internal
}  // namespace mtps
