// A handler that throws after taking the request (moving it away, freeing it) must not make
// the server read that request again: the caller gets kInternal and the server goes on.
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <thread>

#include <kj/exception.h>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps::testing {
namespace {

using Dispatch = RpcServer::Dispatch;

class TransportHandlerErrorTest : public ::testing::TestWithParam<Dispatch> {};

TEST_P(TransportHandlerErrorTest, HandlerThatTakesTheRequestAndThrowsLeavesTheServerWhole) {
  RpcServer server(TransportOptions{});
  ServeEcho(server);
  // Takes the request and the responder, frees both, then throws, as the sparse pull
  // handler once did when a reply could not be built.
  server.Handle(
      proto::Envelope::Body::STATS,
      [](IncomingMessage& request, Responder responder) {
        std::optional<IncomingMessage> taken(std::move(request));
        std::optional<Responder> held(std::move(responder));
        taken.reset();
        held.reset();  // answers kInternal: dropped without an answer
        KJ_FAIL_REQUIRE("reply too large to build");
      },
      GetParam());
  server.Handle(
      proto::Envelope::Body::DENSE_PULL,
      [](IncomingMessage& request, Responder) {
        IncomingMessage taken(std::move(request));
        throw std::runtime_error("a standard exception");
      },
      GetParam());
  const std::string endpoint = StartOnLoopback(server);
  StatusOr<std::unique_ptr<RpcClient>> client = RpcClient::Connect(endpoint, proto::Role::CLIENT, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  for (int round = 0; round < 20; ++round) {
    auto stats = (*client)->NewRequest();
    stats->body().initStats();
    StatusOr<IncomingMessage> reply = (*client)->Call(std::move(stats), {}).get();
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), StatusCode::kInternal) << reply.status();

    auto pull = (*client)->NewRequest();
    pull->body().initDensePull().initBlockIds(3);
    reply = (*client)->Call(std::move(pull), {}).get();
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), StatusCode::kInternal) << reply.status();

    StatusOr<std::string> echoed = Echo(**client, "still serving " + std::to_string(round));
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_EQ(*echoed, "still serving " + std::to_string(round));
  }
  EXPECT_EQ(server.counters().handler_errors, 40u);
}

INSTANTIATE_TEST_SUITE_P(BothDispatches, TransportHandlerErrorTest,
                         ::testing::Values(Dispatch::kHandlerThread, Dispatch::kIoThread));

}  // namespace
}  // namespace mtps::testing
