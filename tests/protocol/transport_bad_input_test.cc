// Bad input: a raw DEALER peer sends garbage frames, truncated Cap'n Proto messages, a
// wrong protocol version, another job's message, an oversized message and unknown kinds.
// Each gets an error reply (when its request id can be read) or is dropped with one log
// line, and the well-behaved client in the same test keeps being served.
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <capnp/schema.h>
#include <gtest/gtest.h>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

using std::chrono::milliseconds;
using Body = proto::Envelope::Body;

constexpr uint64_t kJob = 42;
constexpr size_t kMaxBytes = 64 * 1024;

std::unique_ptr<OutgoingMessage> EchoRequest(uint64_t request_id, size_t payload_bytes,
                                             uint16_t version = proto::PROTOCOL_VERSION,
                                             uint64_t job = kJob) {
  auto message = NewEnvelope(EnvelopeHeader{version, job, request_id, proto::Role::CLIENT, -1});
  auto data = message->body().initEcho(payload_bytes);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<kj::byte>(i);
  return message;
}

class TransportBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    TransportOptions options;
    options.job_id = kJob;
    options.max_message_bytes = kMaxBytes;
    server_ = std::make_unique<RpcServer>(options);
    testing::ServeEcho(*server_);
    endpoint_ = testing::StartOnLoopback(*server_);
    auto client = RpcClient::Connect(endpoint_, proto::Role::WORKER, 0, options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    peer_ = std::make_unique<testing::RawPeer>(endpoint_);
    ExpectServed();
  }

  // The well-behaved client is answered.
  void ExpectServed() {
    const std::string payload = "still here " + std::to_string(++good_calls_);
    StatusOr<std::string> echoed = testing::Echo(*client_, payload);
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_EQ(*echoed, payload);
  }

  // The raw peer gets an error reply to `request_id` with `code` and `text` in its message.
  void ExpectErrorReply(uint64_t request_id, StatusCode code, const std::string& text) {
    StatusOr<IncomingMessage> reply = peer_->Receive(milliseconds(5000));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->envelope().getRequestId(), request_id);
    Status status = ReplyStatus(*reply);
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
    ++replied_;
  }

  // A dropped message: no reply comes, and the server counts it.
  void ExpectDropped() {
    ++dropped_;
    WaitForRejected();
    StatusOr<IncomingMessage> reply = peer_->Receive(milliseconds(50));
    EXPECT_EQ(reply.status().code(), StatusCode::kDeadlineExceeded)
        << "a message without a readable request id got a reply";
  }

  void WaitForRejected() {
    const uint64_t expected = replied_ + dropped_;
    for (int i = 0; i < 1000 && server_->counters().rejected < expected; ++i) {
      std::this_thread::sleep_for(milliseconds(2));
    }
    EXPECT_EQ(server_->counters().rejected, expected);
  }

  testing::LogLineCounter drop_lines_{"dropped an unreadable request"};
  testing::LogLineCounter refusal_lines_{"refused request"};
  std::unique_ptr<RpcServer> server_;
  std::string endpoint_;
  std::unique_ptr<RpcClient> client_;
  std::unique_ptr<testing::RawPeer> peer_;
  int good_calls_ = 0;
  uint64_t replied_ = 0;
  uint64_t dropped_ = 0;
};

TEST_F(TransportBadInput, GarbageIsDroppedWithOneLogLineEach) {
  peer_->SendBytes("hello world");  // 11 bytes: not even whole 8-byte words
  ExpectDropped();
  ExpectServed();

  peer_->SendBytes(std::string(32, '\xab'));  // whole words, but no valid root pointer
  ExpectDropped();
  ExpectServed();

  peer_->SendBytes("");  // one empty frame
  ExpectDropped();
  ExpectServed();

  std::vector<zmq::message_t> many(600);  // more segments than any message may have
  for (auto& frame : many) frame.rebuild(8);
  peer_->Send(std::move(many));
  ExpectDropped();
  ExpectServed();

  EXPECT_EQ(drop_lines_.count(), 4);
  EXPECT_EQ(server_->counters().requests, static_cast<uint64_t>(good_calls_));
}

TEST_F(TransportBadInput, TruncatedMessageGetsDataLoss) {
  // Cut inside the first segment: the header is readable, the payload is not there.
  auto message = EchoRequest(1001, 400);
  std::vector<zmq::message_t> frames = message->ToFrames();
  ASSERT_EQ(frames.size(), 1u);
  zmq::message_t cut(frames[0].data(), 64);
  frames[0] = std::move(cut);
  peer_->Send(std::move(frames));
  ExpectErrorReply(1001, StatusCode::kDataLoss, "malformed Cap'n Proto message");
  ExpectServed();

  // A two-segment message whose second segment never comes.
  message = EchoRequest(1002, 20000);
  frames = message->ToFrames();
  ASSERT_EQ(frames.size(), 2u);
  frames.pop_back();
  peer_->Send(std::move(frames));
  ExpectErrorReply(1002, StatusCode::kDataLoss, "malformed Cap'n Proto message");
  ExpectServed();

  // A frame that is not whole words (one byte short): refused without parsing.
  message = EchoRequest(1003, 100);
  frames = message->ToFrames();
  zmq::message_t short_frame(frames[0].data(), frames[0].size() - 1);
  frames[0] = std::move(short_frame);
  peer_->Send(std::move(frames));
  ExpectDropped();
  ExpectServed();

  WaitForRejected();
  EXPECT_EQ(refusal_lines_.count(), 2);
  EXPECT_EQ(drop_lines_.count(), 1);
}

TEST_F(TransportBadInput, WrongVersionAndOtherJobAreRefused) {
  peer_->Send(EchoRequest(2001, 16, /*version=*/99)->ToFrames());
  ExpectErrorReply(2001, StatusCode::kVersionMismatch, "protocol version 99");
  ExpectServed();

  peer_->Send(EchoRequest(2002, 16, proto::PROTOCOL_VERSION, /*job=*/7)->ToFrames());
  ExpectErrorReply(2002, StatusCode::kFailedPrecondition, "message of another job");
  ExpectServed();

  // Job 0 is no wildcard: a node with a job id refuses it too. Neither refusal names this
  // node's job id (the spec hash).
  peer_->Send(EchoRequest(2003, 16, proto::PROTOCOL_VERSION, /*job=*/0)->ToFrames());
  StatusOr<IncomingMessage> reply = peer_->Receive(milliseconds(5000));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->envelope().getRequestId(), 2003u);
  const Status refused = ReplyStatus(*reply);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(refused.message().find(std::to_string(kJob)), std::string::npos) << refused;
  ++replied_;
  ExpectServed();
  WaitForRejected();
}

TEST_F(TransportBadInput, OversizedMessageIsRefusedWithTheSizes) {
  // Through the raw peer: frames each under the limit, together over it...
  std::vector<zmq::message_t> frames = EchoRequest(3001, 16)->ToFrames();
  for (int i = 0; i < 3; ++i) frames.emplace_back(std::string(kMaxBytes / 2, '\0'));
  peer_->Send(std::move(frames));
  ExpectErrorReply(3001, StatusCode::kResourceExhausted,
                   "exceeds the " + std::to_string(kMaxBytes) + "-byte limit");
  ExpectServed();
  WaitForRejected();
  // ...and through the client, which refuses to send what the server would refuse.
  const uint64_t requests_before = server_->counters().requests;
  StatusOr<std::string> echoed = testing::Echo(*client_, std::string(100 * 1024, 'x'));
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.status().code(), StatusCode::kResourceExhausted) << echoed.status();
  EXPECT_NE(echoed.status().message().find("nothing was sent"), std::string::npos)
      << echoed.status();
  ExpectServed();
  EXPECT_EQ(server_->counters().requests, requests_before + 1);  // only ExpectServed's echo
}

// One frame over the limit is cut off by ZeroMQ as it arrives (ZMQ_MAXMSGSIZE), before it
// is buffered whole: that peer is disconnected, never answered, and the server goes on.
TEST_F(TransportBadInput, FrameOverTheLimitDisconnectsThePeerBeforeBuffering) {
  peer_->Send(EchoRequest(3101, 4 * kMaxBytes)->ToFrames());
  // The raw peer's socket reconnects by itself; a good request on it is answered, and no
  // reply ever names the oversized request.
  bool answered = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (uint64_t id = 3102; !answered && std::chrono::steady_clock::now() < deadline; ++id) {
    peer_->Send(EchoRequest(id, 16)->ToFrames());
    StatusOr<IncomingMessage> reply = peer_->Receive(milliseconds(500));
    while (reply.ok()) {
      ASSERT_NE(reply->envelope().getRequestId(), 3101u) << "the oversized frame was read";
      answered = true;
      reply = peer_->Receive(milliseconds(0));
    }
  }
  EXPECT_TRUE(answered) << "the peer was never served again";
  ExpectServed();
}

TEST(TransportTraversalLimit, MessageThatTakesTooLongToReadIsRefused) {
  TransportOptions options;
  options.traversal_limit_words = 256;  // 2 KB of reading
  RpcServer server(options);
  testing::ServeEcho(server);
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  StatusOr<std::string> big = testing::Echo(**client, std::string(4096, 'k'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status();
  EXPECT_NE(big.status().message().find("over the traversal limit of 256"), std::string::npos)
      << big.status();
  // Between the limit and Cap'n Proto's own limiter (twice ours): refused by our check.
  StatusOr<std::string> medium = testing::Echo(**client, std::string(3000, 'm'));
  ASSERT_FALSE(medium.ok());
  EXPECT_EQ(medium.status().code(), StatusCode::kResourceExhausted) << medium.status();
  EXPECT_NE(medium.status().message().find("over the traversal limit of 256"), std::string::npos)
      << medium.status();
  StatusOr<std::string> small = testing::Echo(**client, std::string(1024, 's'));
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(*small, std::string(1024, 's'));
  EXPECT_EQ(server.counters().rejected, 2u);
}

TEST_F(TransportBadInput, UnknownKindsGetUnimplemented) {
  // A kind of the schema that this server has no handler for.
  auto message = NewEnvelope(EnvelopeHeader{proto::PROTOCOL_VERSION, kJob, 4001});
  message->body().initSparsePull().setTableId(3);
  peer_->Send(message->ToFrames());
  ExpectErrorReply(4001, StatusCode::kUnimplemented, "no handler for sparsePull");
  ExpectServed();

  // A kind from a newer schema: overwrite the union discriminant in the encoded frame.
  message = EchoRequest(4002, 16);
  std::vector<zmq::message_t> frames = message->ToFrames();
  zmq::message_t edited(frames[0].data(), frames[0].size());
  auto* words = static_cast<uint64_t*>(edited.data());
  const int64_t root_offset = static_cast<int32_t>(words[0] & 0xffffffffu) >> 2;
  auto* data_section = reinterpret_cast<uint16_t*>(words + 1 + root_offset);
  const uint32_t discriminant_slot =
      capnp::Schema::from<Body>().getProto().getStruct().getDiscriminantOffset();
  ASSERT_EQ(data_section[discriminant_slot], static_cast<uint16_t>(Body::ECHO));
  data_section[discriminant_slot] = 200;
  frames[0] = std::move(edited);
  peer_->Send(std::move(frames));
  ExpectErrorReply(4002, StatusCode::kUnimplemented, "unknown kind 200");
  ExpectServed();

  WaitForRejected();
  EXPECT_EQ(refusal_lines_.count(), 2);
}

TEST(TransportBadReplies, ClientSurvivesGarbageAndTruncatedReplies) {
  // A fake server: a raw ROUTER that answers each request badly, then well.
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  testing::LogLineCounter drops("dropped an unreadable reply");

  auto receive_request = [&](zmq::message_t* identity) -> uint64_t {
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, milliseconds(5000)) == 0) return 0;
    (void)router.recv(*identity);
    bool more = identity->more();
    while (more) {
      zmq::message_t part;
      (void)router.recv(part);
      more = part.more();
      frames.push_back(std::move(part));
    }
    StatusOr<IncomingMessage> request = IncomingMessage::FromFrames(std::move(frames), {});
    return request.ok() ? request->envelope().getRequestId() : 0;
  };
  auto send = [&](zmq::message_t& identity, std::vector<zmq::message_t> frames) {
    router.send(identity, zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      router.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore
                                                   : zmq::send_flags::none);
    }
  };

  auto request = (*client)->NewRequest();
  request->body().setEcho(testing::AsData("ping"));
  auto future = (*client)->Call(std::move(request), {milliseconds(5000), 1});
  zmq::message_t identity;
  const uint64_t id = receive_request(&identity);
  ASSERT_NE(id, 0u);
  // Garbage first: dropped with a log line, the call stays open.
  std::vector<zmq::message_t> garbage;
  garbage.emplace_back("garbage!!", 9);
  zmq::message_t identity_copy(identity.data(), identity.size());
  send(identity_copy, std::move(garbage));
  // Then a truncated reply whose request id is readable: the call fails with kDataLoss.
  auto reply = EchoRequest(id, 400, proto::PROTOCOL_VERSION, 0);
  std::vector<zmq::message_t> frames = reply->ToFrames();
  ASSERT_EQ(frames.size(), 1u);
  zmq::message_t cut(frames[0].data(), 64);
  frames[0] = std::move(cut);
  send(identity, std::move(frames));
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  StatusOr<IncomingMessage> result = future.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss) << result.status();
  EXPECT_EQ(drops.count(), 1);
}

}  // namespace
}  // namespace mtps
