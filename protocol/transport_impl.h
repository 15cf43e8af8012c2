// Internals shared by the transport's .cc files (not for other modules): the bodies of
// OutgoingMessage and IncomingMessage, and sending/receiving them as ZeroMQ frames.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <zmq.hpp>

#include "protocol/transport.h"

namespace mtps {

struct OutgoingMessage::Impl {
  // Cap'n Proto zeroes every segment it allocates: a small first segment keeps that cheap
  // for the many small messages (header + small body fit in 1 KB); a large body (keys,
  // values) gets a segment of its own size.
  static constexpr unsigned kFirstSegmentWords = 128;
  capnp::MallocMessageBuilder builder{kFirstSegmentWords};
  std::vector<std::shared_ptr<void>> keep_alive;  // external data referenced by segments
  std::shared_ptr<PayloadPool> pool;              // of the client or server that made it
};

struct IncomingMessage::Impl {
  std::vector<zmq::message_t> frames;  // never resized once segments point into it
  std::vector<kj::ArrayPtr<const capnp::word>> segments;
  std::vector<kj::Array<capnp::word>> aligned_copies;  // of frames not 8-byte aligned
  std::optional<capnp::SegmentArrayMessageReader> reader;
  proto::Envelope::Reader envelope;  // the root, checked
  std::string peer;                  // the sender's key holder (CURVE), else empty
  size_t bytes = 0;
};

namespace transport_internal {

// Sends `message` as one multipart ZeroMQ message, each segment a zero-copy frame that
// holds a reference to `message` until ZeroMQ is done with it. `identity`, when given,
// goes first (ROUTER replies) and is consumed. Never blocks: returns false, sending
// nothing, when the socket would block. Throws zmq::error_t on socket errors.
bool SendMessage(zmq::socket_t& socket, const std::shared_ptr<OutgoingMessage::Impl>& message,
                 zmq::message_t* identity);

// Receives one whole multipart message if one is queued (never blocks); false if none.
// When `identity` is given, the first part (ROUTER's peer identity) goes there and the
// rest to `frames`, which is cleared first. Throws zmq::error_t on socket errors.
bool ReceiveMultipart(zmq::socket_t& socket, zmq::message_t* identity,
                      std::vector<zmq::message_t>* frames);

// zmq_poll that retries on EINTR. Throws zmq::error_t on other errors.
void Poll(zmq_pollitem_t* items, int count, long timeout_ms);

// Options every transport socket gets: no linger (Stop and destructors never hang); no
// send high-water mark (a ROUTER would silently drop replies past it; the callers bound the
// number of requests in flight); a bounded receive queue (past it ZeroMQ stops reading
// from that peer: TCP pushes back, nothing is dropped); and ZMQ_MAXMSGSIZE, so a frame
// larger than a whole message may be is refused as it arrives (the peer is disconnected)
// instead of being buffered whole first.
void ConfigureSocket(zmq::socket_t& socket, const TransportOptions& options);

// Frames (message parts) a socket queues per peer before it stops reading from it.
inline constexpr int kReceiveHighWaterMark = 4096;

}  // namespace transport_internal
}  // namespace mtps
