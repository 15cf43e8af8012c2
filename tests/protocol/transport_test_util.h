// Helpers for the transport tests: a server on a free loopback port, echo calls, a raw
// DEALER socket for forging frames, and a glog sink that counts warning lines.
#pragma once

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <zmq.hpp>

#include "protocol/transport.h"

namespace mtps::testing {

inline std::string Loopback(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// Binds `server` to a free loopback port, starts it and returns its endpoint.
inline std::string StartOnLoopback(RpcServer& server) {
  StatusOr<int> port = server.Bind("tcp://127.0.0.1:0");
  EXPECT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  Status started = server.Start();
  EXPECT_TRUE(started.ok()) << started;
  return Loopback(*port);
}

// Answers every echo with its payload.
inline void ServeEcho(RpcServer& server) {
  server.Handle(proto::Envelope::Body::ECHO, [](IncomingMessage& request, Responder responder) {
    auto reply = responder.NewReply();
    reply->body().setEcho(request.envelope().getBody().getEcho());
    responder.Send(std::move(reply));
  });
}

inline std::string AsString(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

inline capnp::Data::Reader AsData(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

// Sends an echo of `payload` and returns what came back (or the failure).
inline StatusOr<std::string> Echo(RpcClient& client, const std::string& payload,
                                  CallOptions options = {std::chrono::milliseconds(5000), 1}) {
  auto request = client.NewRequest();
  request->body().setEcho(AsData(payload));
  std::future<StatusOr<IncomingMessage>> future = client.Call(std::move(request), options);
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return DeadlineExceeded("test: the call did not complete within 10 s");
  }
  StatusOr<IncomingMessage> reply = future.get();
  if (!reply.ok()) return reply.status();
  auto body = reply->envelope().getBody();
  if (body.which() != proto::Envelope::Body::ECHO) {
    return Internal("reply is " + BodyKindName(body.which()) + ", not echo");
  }
  return AsString(body.getEcho());
}

// A DEALER socket that speaks raw frames to a server, as a misbehaving peer would.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  void Send(std::vector<zmq::message_t> frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      socket_.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore
                                                    : zmq::send_flags::none);
    }
  }
  void SendBytes(const std::string& bytes) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(bytes.data(), bytes.size());
    Send(std::move(frames));
  }

  // The next reply, parsed; kDeadlineExceeded when none arrives within `wait`.
  StatusOr<IncomingMessage> Receive(std::chrono::milliseconds wait) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) == 0) return DeadlineExceeded("test: no reply");
    std::vector<zmq::message_t> frames;
    bool more = true;
    while (more) {
      zmq::message_t part;
      (void)socket_.recv(part);
      more = part.more();
      frames.push_back(std::move(part));
    }
    return IncomingMessage::FromFrames(std::move(frames), TransportOptions{});
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
};

// Counts the glog lines of WARNING or worse whose text contains `needle`.
class LogLineCounter : public google::LogSink {
 public:
  explicit LogLineCounter(std::string needle) : needle_(std::move(needle)) {
    google::AddLogSink(this);
  }
  ~LogLineCounter() override { google::RemoveLogSink(this); }

  void send(google::LogSeverity severity, const char*, const char*, int,
            const google::LogMessageTime&, const char* message, size_t length) override {
    if (severity < google::GLOG_WARNING) return;
    if (std::string_view(message, length).find(needle_) == std::string_view::npos) return;
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
  }
  int count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

 private:
  const std::string needle_;
  std::mutex mutex_;
  int count_ = 0;
};

}  // namespace mtps::testing
