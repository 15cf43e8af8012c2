// Every message kind of mtps.capnp, built with real content, goes through an RpcServer and
// an RpcClient over tcp loopback and comes back unchanged.
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include <capnp/schema.h>
#include <gtest/gtest.h>

#include "protocol/packed_data.h"
#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

using Body = proto::Envelope::Body;
using BodyFiller = std::function<void(Body::Builder)>;

void FillNode(proto::NodeInfo::Builder node, int32_t rank) {
  node.setRank(rank);
  node.setAddress("tcp://10.0.0." + std::to_string(rank + 1) + ":5000");
  node.setHttpAddress("10.0.0." + std::to_string(rank + 1) + ":8080");
}

void FillView(proto::ClusterView::Builder view) {
  view.setEpoch(7);
  view.setSpecHash(0xfeedfacecafebeefULL);
  auto servers = view.initServers(3);
  for (int i = 0; i < 3; ++i) FillNode(servers[i], i);
  auto workers = view.initWorkers(2);
  for (int i = 0; i < 2; ++i) FillNode(workers[i], i);
  view.setPartition(proto::Partition::JUMP_HASH);
}

void FillBlocks(capnp::List<proto::DenseBlock>::Builder blocks) {
  for (uint32_t b = 0; b < blocks.size(); ++b) {
    blocks[b].setId(b * 3);
    blocks[b].setName("tower_" + std::to_string(b) + "/w");
    std::span<float> values = InitPackedFloats(blocks[b].initValues((b + 5) * sizeof(float)));
    for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * i - b;
  }
}

// One filler per union member, with the kind it makes.
std::map<Body::Which, BodyFiller> AllKinds() {
  std::map<Body::Which, BodyFiller> kinds;
  kinds[Body::ERROR] = [](Body::Builder b) {
    SetError(b, NotFound("table 9 is not in the job spec (3 tables)"));
  };
  kinds[Body::ACK] = [](Body::Builder b) { b.initAck().setCount(12345); };
  kinds[Body::REGISTER] = [](Body::Builder b) {
    auto r = b.initRegister();
    r.setRole(proto::Role::WORKER);
    r.setAddress("tcp://127.0.0.1:4100");
    r.setHttpAddress("127.0.0.1:8100");
    r.setSpecHash(0x1234567890abcdefULL);
    r.setRequestedRank(3);
    r.setHostname("node-a");
    r.setPid(4242);
  };
  kinds[Body::REGISTER_REPLY] = [](Body::Builder b) {
    auto r = b.initRegisterReply();
    r.setRank(2);
    FillView(r.initView());
  };
  kinds[Body::CLUSTER_VIEW] = [](Body::Builder b) { FillView(b.initClusterView()); };
  kinds[Body::HEARTBEAT] = [](Body::Builder b) {
    auto h = b.initHeartbeat();
    h.setState(proto::NodeState::PAUSED);
    h.setStep(991);
  };
  kinds[Body::HEARTBEAT_REPLY] = [](Body::Builder b) {
    auto h = b.initHeartbeatReply();
    h.setViewEpoch(8);
    h.setJobState(proto::NodeState::FAILED);
    h.setReason("server 1 did not come back within 60 s");
  };
  kinds[Body::BARRIER] = [](Body::Builder b) {
    auto r = b.initBarrier();
    r.setName("epoch-1-end");
    r.setCount(5);
  };
  kinds[Body::SHUTDOWN] = [](Body::Builder b) {
    auto s = b.initShutdown();
    s.setReason("server 1 failed three times");
    s.setFailed(true);
  };
  kinds[Body::SPARSE_PULL] = [](Body::Builder b) {
    auto p = b.initSparsePull();
    p.setTableId(2);
    std::span<uint64_t> keys = InitPackedU64s(p.initKeys(1000 * sizeof(uint64_t)));
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = 0x9e3779b97f4a7c15ULL * (i + 1);
    p.setStep(77);
    p.setCountAsSighting(false);
  };
  kinds[Body::SPARSE_PULL_REPLY] = [](Body::Builder b) {
    auto p = b.initSparsePullReply();
    p.setTableId(2);
    p.setDim(16);
    std::span<float> values = InitPackedFloats(p.initValues(100 * 16 * sizeof(float)));
    for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0f / (i + 1);
  };
  kinds[Body::SPARSE_PUSH] = [](Body::Builder b) {
    auto p = b.initSparsePush();
    p.setTableId(1);
    std::span<uint64_t> keys = InitPackedU64s(p.initKeys(50 * sizeof(uint64_t)));
    std::iota(keys.begin(), keys.end(), uint64_t{1} << 40);
    std::span<float> grads = InitPackedFloats(p.initGradients(50 * 8 * sizeof(float)));
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = -0.001f * i;
    p.setStep(12);
    p.setSync(true);
    p.setWorkerRank(1);
    p.setNumWorkers(4);
  };
  kinds[Body::SPARSE_PUSH_REPLY] = [](Body::Builder b) {
    auto p = b.initSparsePushReply();
    p.setApplied(48);
    p.setDropped(2);
  };
  kinds[Body::DENSE_INIT] = [](Body::Builder b) { FillBlocks(b.initDenseInit().initBlocks(3)); };
  kinds[Body::DENSE_PULL] = [](Body::Builder b) {
    auto ids = b.initDensePull().initBlockIds(4);
    for (uint32_t i = 0; i < 4; ++i) ids.set(i, i * 5 + 1);
  };
  kinds[Body::DENSE_PULL_REPLY] = [](Body::Builder b) {
    FillBlocks(b.initDensePullReply().initBlocks(2));
  };
  kinds[Body::DENSE_PUSH] = [](Body::Builder b) {
    auto p = b.initDensePush();
    FillBlocks(p.initBlocks(2));
    p.setStep(13);
    p.setSync(false);
    p.setWorkerRank(0);
    p.setNumWorkers(2);
  };
  kinds[Body::CHECKPOINT_BEGIN] = [](Body::Builder b) {
    auto c = b.initCheckpointBegin();
    c.setCheckpointId(3);
    c.setDir("/ckpt/job/3");
    c.setStep(3000);
  };
  kinds[Body::CHECKPOINT_ACK] = [](Body::Builder b) {
    auto c = b.initCheckpointAck();
    c.setCheckpointId(3);
    c.setServerRank(1);
    auto files = c.initFiles(2);
    for (uint32_t i = 0; i < 2; ++i) {
      files[i].setPath("/ckpt/job/3/server1_table" + std::to_string(i) + ".mtck");
      files[i].setBytes(1 << (20 + i));
      files[i].setChecksum(0xabcdef00ULL + i);
    }
  };
  kinds[Body::CHECKPOINT_COMMIT] = [](Body::Builder b) {
    b.initCheckpointCommit().setCheckpointId(3);
  };
  kinds[Body::STATS] = [](Body::Builder b) {
    auto ids = b.initStats().initTableIds(2);
    ids.set(0, 0);
    ids.set(1, 2);
  };
  kinds[Body::STATS_REPLY] = [](Body::Builder b) {
    auto s = b.initStatsReply();
    auto tables = s.initTables(2);
    for (uint32_t i = 0; i < 2; ++i) {
      tables[i].setTableId(i);
      tables[i].setName(i == 0 ? "user" : "item");
      tables[i].setRows(1000 + i);
      tables[i].setBytes(64000 + i);
      tables[i].setAdmitted(900);
      tables[i].setEvicted(10);
      tables[i].setExpired(5);
      tables[i].setDroppedPushes(33);
      tables[i].setRejectedRequests(1);
    }
    s.setDenseBlocks(12);
    s.setRequests(555);
  };
  kinds[Body::PROGRESS] = [](Body::Builder b) {
    auto p = b.initProgress();
    p.setStep(400);
    p.setSamples(400 * 512);
    p.setSamplesPerSec(12345.5);
    auto tasks = p.initTasks(2);
    tasks[0].setName("ctr");
    tasks[0].setLoss(0.45);
    tasks[0].setAuc(0.71);
    tasks[0].setLogloss(0.45);
    tasks[1].setName("cvr");
    tasks[1].setLoss(0.12);
    tasks[1].setAuc(std::numeric_limits<double>::quiet_NaN());
    tasks[1].setMse(0.03);
    p.setPhase("train");
    p.setEpoch(1);
    p.setDataPosition(204800);
  };
  kinds[Body::ECHO] = [](Body::Builder b) {
    auto data = b.initEcho(3000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<kj::byte>(i * 31);
  };
  return kinds;
}

// Answers every request with a copy of its body.
void ServeMirror(RpcServer& server) {
  capnp::StructSchema body = capnp::Schema::from<Body>();
  for (capnp::StructSchema::Field field : body.getUnionFields()) {
    auto kind = static_cast<Body::Which>(field.getProto().getDiscriminantValue());
    server.Handle(kind, [](IncomingMessage& request, Responder responder) {
      auto reply = responder.NewReply();
      proto::Envelope::Builder envelope = reply->envelope();
      const uint64_t id = envelope.getRequestId();
      reply->builder().setRoot(request.envelope());  // body and all
      envelope = reply->envelope();
      envelope.setRequestId(id);
      responder.Send(std::move(reply));
    });
  }
}

TEST(TransportRoundTrip, EveryKindOfTheSchemaIsCovered) {
  const auto kinds = AllKinds();
  std::set<std::string> missing;
  for (capnp::StructSchema::Field field : capnp::Schema::from<Body>().getUnionFields()) {
    auto kind = static_cast<Body::Which>(field.getProto().getDiscriminantValue());
    if (kinds.count(kind) == 0) missing.insert(field.getProto().getName());
  }
  EXPECT_TRUE(missing.empty()) << "add these kinds to AllKinds(): " << ::testing::PrintToString(missing);
  EXPECT_EQ(kinds.size(), capnp::Schema::from<Body>().getUnionFields().size());
}

TEST(TransportRoundTrip, EveryKindComesBackUnchanged) {
  RpcServer server(TransportOptions{}, proto::Role::SERVER, 0);
  ServeMirror(server);
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 1);
  ASSERT_TRUE(client.ok()) << client.status();

  for (const auto& [kind, fill] : AllKinds()) {
    SCOPED_TRACE(BodyKindName(kind));
    auto request = (*client)->NewRequest();
    fill(request->body());
    ASSERT_EQ(request->body().which(), kind);
    const std::string sent = kj::str(request->body().asReader()).cStr();
    const uint64_t id = request->envelope().getRequestId();

    StatusOr<IncomingMessage> reply = (*client)->Call(std::move(request), {}).get();
    if (kind == Body::ERROR) {
      // An Error reply completes the call with the Status it carries.
      ASSERT_FALSE(reply.ok());
      EXPECT_EQ(reply.status().code(), StatusCode::kNotFound);
      EXPECT_EQ(reply.status().message(), "table 9 is not in the job spec (3 tables)");
      continue;
    }
    ASSERT_TRUE(reply.ok()) << reply.status();
    proto::Envelope::Reader envelope = reply->envelope();
    EXPECT_EQ(envelope.getRequestId(), id);
    EXPECT_EQ(envelope.getVersion(), proto::PROTOCOL_VERSION);
    EXPECT_EQ(envelope.getBody().which(), kind);
    EXPECT_EQ(kj::str(envelope.getBody()).cStr(), sent);
    EXPECT_TRUE(ReplyStatus(*reply).ok());
  }
}

TEST(TransportRoundTrip, PackedNumbersAreReadInPlace) {
  RpcServer server(TransportOptions{});
  ServeMirror(server);
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  auto request = (*client)->NewRequest();
  AllKinds()[Body::SPARSE_PUSH](request->body());
  StatusOr<IncomingMessage> reply = (*client)->Call(std::move(request), {}).get();
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto push = reply->envelope().getBody().getSparsePush();
  StatusOr<std::span<const uint64_t>> keys = PackedU64s(push.getKeys(), "keys");
  StatusOr<std::span<const float>> grads = PackedFloats(push.getGradients(), "gradients");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_TRUE(grads.ok()) << grads.status();
  ASSERT_EQ(keys->size(), 50u);
  ASSERT_EQ(grads->size(), 400u);
  for (size_t i = 0; i < keys->size(); ++i) EXPECT_EQ((*keys)[i], (uint64_t{1} << 40) + i);
  for (size_t i = 0; i < grads->size(); ++i) EXPECT_EQ((*grads)[i], -0.001f * i);
  // The span points into the received message, not into a copy.
  EXPECT_EQ(static_cast<const void*>(keys->data()), push.getKeys().begin());
}

TEST(TransportRoundTrip, RepliesCanReferenceTheRequestWithoutCopying) {
  // The handler keeps the request alive through the reply's KeepAlive and points the reply's
  // echo at the request's own bytes; the client's payload is external memory too.
  RpcServer server(TransportOptions{});
  server.Handle(Body::ECHO, [](IncomingMessage& request, Responder responder) {
    auto held = std::make_shared<IncomingMessage>(std::move(request));
    auto reply = responder.NewReply();
    capnp::Data::Reader echo = held->envelope().getBody().getEcho();
    reply->body().adoptEcho(reply->builder().getOrphanage().referenceExternalData(echo));
    reply->KeepAlive(std::move(held));
    responder.Send(std::move(reply));
  });
  const std::string endpoint = testing::StartOnLoopback(server);
  auto client = RpcClient::Connect(endpoint, proto::Role::WORKER, 0);
  ASSERT_TRUE(client.ok()) << client.status();
  for (size_t bytes : {size_t{8}, size_t{1000}, size_t{200000}}) {
    auto words = std::make_shared<std::vector<uint64_t>>((bytes + 7) / 8);
    for (size_t i = 0; i < words->size(); ++i) (*words)[i] = i * 2654435761u;
    const capnp::Data::Reader payload(reinterpret_cast<const kj::byte*>(words->data()), bytes);
    auto request = (*client)->NewRequest();
    request->body().adoptEcho(request->builder().getOrphanage().referenceExternalData(payload));
    request->KeepAlive(words);
    StatusOr<IncomingMessage> reply = (*client)->Call(std::move(request), {}).get();
    ASSERT_TRUE(reply.ok()) << reply.status();
    capnp::Data::Reader echo = reply->envelope().getBody().getEcho();
    ASSERT_EQ(echo.size(), bytes);
    EXPECT_EQ(std::memcmp(echo.begin(), words->data(), bytes), 0) << bytes << " bytes";
  }
}

TEST(PackedData, RefusesBlobsThatAreNotWholeElements) {
  alignas(8) const kj::byte bytes[12] = {};
  StatusOr<std::span<const uint64_t>> keys = PackedU64s(capnp::Data::Reader(bytes, 12), "keys");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(keys.status().message().find("keys holds 12 bytes"), std::string::npos)
      << keys.status();
  StatusOr<std::span<const float>> floats = PackedFloats(capnp::Data::Reader(bytes, 10), "values");
  ASSERT_FALSE(floats.ok());
  EXPECT_NE(floats.status().message().find("values holds 10 bytes"), std::string::npos);
  StatusOr<std::span<const float>> ok = PackedFloats(capnp::Data::Reader(bytes, 12), "values");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 3u);
  StatusOr<std::span<const float>> misaligned =
      PackedFloats(capnp::Data::Reader(bytes + 1, 8), "values");
  ASSERT_FALSE(misaligned.ok());
  EXPECT_EQ(misaligned.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace mtps
