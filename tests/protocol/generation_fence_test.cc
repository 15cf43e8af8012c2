// Tests of fencing by generation over real loopback sockets: a server with a fence refuses
// a worker's request of an older generation than published for its rank (a clear
// PERMISSION_DENIED naming both generations) before any handler runs, and serves the
// current generation, newer ones, other ranks and non-workers.
#include "protocol/generation_fence.h"

#include <atomic>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/protocol/transport_test_util.h"

namespace mtps {
namespace {

using ::mtps::testing::Echo;
using ::mtps::testing::StartOnLoopback;
using ::testing::HasSubstr;

TEST(GenerationFenceTest, AStaleWorkersRequestsAreRefusedBeforeAnyHandler) {
  auto fence = std::make_shared<GenerationFence>();
  TransportOptions options;
  options.fence = fence;
  RpcServer server(options);
  std::atomic<int> handled{0};
  server.Handle(proto::Envelope::Body::ECHO, [&handled](IncomingMessage& request, Responder responder) {
    ++handled;
    auto reply = responder.NewReply();
    reply->body().setEcho(request.envelope().getBody().getEcho());
    responder.Send(std::move(reply));
  });
  const std::string endpoint = StartOnLoopback(server);

  auto connect = [&](proto::Role role, int rank, uint64_t generation) {
    TransportOptions o;
    o.generation = generation;
    auto client = RpcClient::Connect(endpoint, role, rank, o);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  };
  auto stale = connect(proto::Role::WORKER, 1, 4);
  // Nothing published yet: a server that has not seen a view fences no one.
  EXPECT_TRUE(Echo(*stale, "before").ok());

  fence->Publish(proto::Role::WORKER, 1, 5);
  fence->Publish(proto::Role::WORKER, 1, 3);  // an older view arriving late changes nothing
  StatusOr<std::string> refused = Echo(*stale, "after");
  ASSERT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("worker 1 of generation 4 is fenced"));
  EXPECT_THAT(refused.status().message(), HasSubstr("generation 5"));
  EXPECT_EQ(fence->refused(), 1u);
  EXPECT_EQ(handled.load(), 1);

  EXPECT_TRUE(Echo(*connect(proto::Role::WORKER, 1, 5), "current").ok());
  EXPECT_TRUE(Echo(*connect(proto::Role::WORKER, 1, 6), "newer than the view").ok());
  EXPECT_TRUE(Echo(*connect(proto::Role::WORKER, 0, 1), "another rank").ok());
  EXPECT_TRUE(Echo(*connect(proto::Role::CLIENT, 1, 0), "a tool").ok());
  // A worker carrying no generation cannot slip past a published one.
  EXPECT_EQ(Echo(*connect(proto::Role::WORKER, 1, 0), "none").status().code(), StatusCode::kPermissionDenied);
  // set_generation applies to requests built from then on.
  stale->set_generation(5);
  EXPECT_TRUE(Echo(*stale, "re-registered").ok());
  EXPECT_EQ(fence->refused(), 2u);
  EXPECT_EQ(handled.load(), 6);
}

}  // namespace
}  // namespace mtps
