// libFuzzer target: wire messages decoded (IncomingMessage::FromFrames) and dispatched to a
// parameter server's handlers through a real RpcServer, as a peer on a socket sends them.
//
// Each input is a few messages of frames (fuzz_inputs.h: SplitWireInput). Every message
// is decoded on its own, then all are sent over a loopback DEALER socket to an RpcServer
// running ps::Server's handlers on its I/O thread (handler_threads = 0, so they run in
// arrival order), followed by an echo whose answer says every message was dispatched.
// Shard threads may still answer after that; their replies are drained with the next
// input's. The server is rebuilt every kInputsPerServer inputs to bound the state (rows,
// dense blocks, checkpoint files) that inputs leave behind. Checkpoint begin and commit
// are fuzzed too: a server writes only under its own checkpoint root (a scratch directory
// here, emptied at each rebuild), whatever directory a message names.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <memory>
#include <vector>

#include <glog/logging.h>
#include <unistd.h>
#include <zmq.hpp>

#include "benchmarks/fuzz/fuzz_entry.h"
#include "benchmarks/fuzz/fuzz_inputs.h"
#include "protocol/transport.h"
#include "ps/server.h"

namespace mtps::fuzz {
namespace {

using Kind = proto::Envelope::Body::Which;

constexpr int kInputsPerServer = 512;
constexpr uint64_t kSentinelRequestId = 0xF0220F0220F022ull;
// The echo comes back at once unless dispatch hangs: a hang is a finding.
constexpr auto kSentinelTimeout = std::chrono::seconds(20);

std::vector<zmq::message_t> ToZmq(const WireMessage& message) {
  std::vector<zmq::message_t> frames;
  frames.reserve(message.size());
  for (std::string_view f : message) frames.emplace_back(f.data(), f.size());
  return frames;
}

class Harness {
 public:
  Harness() : job_(ServerJob()) {
    options_.handler_threads = 0;
    options_.job_id = job_.hash;
    Rebuild();
  }

  void Run(const uint8_t* data, size_t size) {
    if (++inputs_ % kInputsPerServer == 0) Rebuild();
    std::vector<WireMessage> messages = SplitWireInput(data, size);
    for (const WireMessage& m : messages) {
      std::optional<uint64_t> request_id;
      (void)IncomingMessage::FromFrames(ToZmq(m), options_, &request_id);
    }
    if (messages.empty()) return;
    for (const WireMessage& m : messages) Send(m);
    SendSentinel();
    AwaitSentinel();
  }

 private:
  void Rebuild() {
    if (client_) client_->close();
    if (rpc_) rpc_->Stop();
    rpc_.reset();
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(checkpoint_root_, ignored);
    std::filesystem::create_directories(checkpoint_root_, ignored);
    ps::ServerOptions server_options{.rank = 0, .num_servers = 2, .shards = 2, .num_workers = 2};
    server_options.checkpoint_root = checkpoint_root_.string();
    auto server = ps::Server::Create(job_, server_options, nullptr);
    if (!server.ok()) Die("ps::Server::Create", server.status());
    server_ = std::move(server).value();
    rpc_ = std::make_unique<RpcServer>(options_, proto::Role::SERVER, 0);
    server_->RegisterHandlers(*rpc_);
    rpc_->Handle(Kind::ECHO, [](IncomingMessage& request, Responder responder) {
      auto reply = responder.NewReply();
      reply->body().setEcho(request.envelope().getBody().getEcho());
      responder.Send(std::move(reply));
    });
    // Loopback TCP, as peers reach a server (the server's ZeroMQ context is its own, so
    // inproc:// cannot reach it).
    StatusOr<int> port = rpc_->Bind("tcp://127.0.0.1:0");
    if (!port.ok()) Die("Bind", port.status());
    if (Status s = rpc_->Start(); !s.ok()) Die("Start", s);
    client_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    client_->set(zmq::sockopt::linger, 0);
    client_->connect("tcp://127.0.0.1:" + std::to_string(*port));
  }

  void Send(const WireMessage& m) {
    for (size_t i = 0; i < m.size(); ++i) {
      zmq::message_t frame(m[i].data(), m[i].size());
      client_->send(frame, i + 1 < m.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  void SendSentinel() {
    auto echo = NewEnvelope(EnvelopeHeader{.job_id = job_.hash, .request_id = kSentinelRequestId});
    echo->body().setEcho(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("ok"), 2));
    std::vector<zmq::message_t> frames = echo->ToFrames();
    for (size_t i = 0; i < frames.size(); ++i) {
      client_->send(frames[i],
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // Reads replies until the sentinel's; the others are checked to decode.
  void AwaitSentinel() {
    const auto deadline = std::chrono::steady_clock::now() + kSentinelTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{client_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames;
      zmq::message_t part;
      do {
        (void)client_->recv(part, zmq::recv_flags::none);
        frames.push_back(std::move(part));
        part = zmq::message_t();
      } while (frames.back().more());
      StatusOr<IncomingMessage> reply = IncomingMessage::FromFrames(std::move(frames), {});
      if (!reply.ok()) Die("the server sent a reply that does not decode", reply.status());
      if (reply->envelope().getRequestId() == kSentinelRequestId) return;
    }
    std::fprintf(stderr, "wire fuzz: no answer to the echo within %lld s: dispatch hangs\n",
                 static_cast<long long>(kSentinelTimeout.count()));
    std::abort();
  }

  [[noreturn]] static void Die(const char* what, const Status& status) {
    std::fprintf(stderr, "wire fuzz: %s: %s\n", what, status.ToString().c_str());
    std::abort();
  }

  const JobSpec job_;
  const std::filesystem::path checkpoint_root_ =
      std::filesystem::temp_directory_path() / ("mtps-wire-fuzz-" + std::to_string(::getpid()));
  TransportOptions options_;
  std::unique_ptr<ps::Server> server_;
  std::unique_ptr<RpcServer> rpc_;
  zmq::context_t context_{1};
  std::unique_ptr<zmq::socket_t> client_;
  int64_t inputs_ = 0;
};

}  // namespace
}  // namespace mtps::fuzz

MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
