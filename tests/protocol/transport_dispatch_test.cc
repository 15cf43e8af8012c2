// Where handlers run: Dispatch::kIoThread handlers on the server's one I/O thread, the
// others on handler threads, both answering correctly side by side.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "protocol/transport.h"
#include "tests/protocol/transport_test_util.h"

namespace mtps::testing {
namespace {

TEST(TransportDispatchTest, IoThreadHandlersRunOnOneThreadApartFromThePool) {
  TransportOptions options;
  options.handler_threads = 2;
  RpcServer server(options);
  std::mutex mutex;
  std::set<std::thread::id> io_threads, pool_threads;
  server.Handle(
      proto::Envelope::Body::ECHO,
      [&](IncomingMessage& request, Responder responder) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          io_threads.insert(std::this_thread::get_id());
        }
        auto reply = responder.NewReply();
        reply->body().setEcho(request.envelope().getBody().getEcho());
        responder.Send(std::move(reply));
      },
      RpcServer::Dispatch::kIoThread);
  server.Handle(proto::Envelope::Body::STATS, [&](IncomingMessage&, Responder responder) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      pool_threads.insert(std::this_thread::get_id());
    }
    responder.SendAck(7);
  });
  const std::string endpoint = StartOnLoopback(server);
  StatusOr<std::unique_ptr<RpcClient>> client = RpcClient::Connect(endpoint, proto::Role::CLIENT, 0);
  ASSERT_TRUE(client.ok()) << client.status();

  for (int i = 0; i < 40; ++i) {
    StatusOr<std::string> echoed = Echo(**client, "payload " + std::to_string(i));
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_EQ(*echoed, "payload " + std::to_string(i));
    auto stats = (*client)->NewRequest();
    stats->body().initStats();
    StatusOr<IncomingMessage> reply = (*client)->Call(std::move(stats), {}).get();
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->envelope().getBody().getAck().getCount(), 7u);
  }
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(io_threads.size(), 1u) << "I/O-thread handlers ran on several threads";
  EXPECT_FALSE(pool_threads.empty());
  EXPECT_EQ(pool_threads.count(*io_threads.begin()), 0u)
      << "a pooled handler ran on the I/O thread";
  EXPECT_NE(*io_threads.begin(), std::this_thread::get_id());
}

}  // namespace
}  // namespace mtps::testing
