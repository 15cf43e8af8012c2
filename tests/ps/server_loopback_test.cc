// Two in-process parameter servers and ps::Client over tcp loopback: initial values,
// pushes landing on the owning server, duplicates, sync aggregation of two workers,
// dense blocks, async pipelining, stats, and client-side failures.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <vector>

#include <zmq_addon.hpp>

#include "ps/client.h"
#include "ps/jump_hash.h"
#include "ps/optimizer.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using namespace std::chrono_literals;
using testing::InitialRow;
using testing::InProcessCluster;
using testing::kItemDim;
using testing::kItemTable;
using testing::kUserDim;
using testing::kUserLr;
using testing::kUserTable;
using testing::SomeKeys;
using testing::TestJob;

std::unique_ptr<Client> ConnectTo(const InProcessCluster& cluster, ClientOptions options = {}) {
  options.timeout = std::chrono::milliseconds(5000);
  auto client = Client::Connect(cluster.endpoints(), options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

// The row of `key` as server `rank` holds it; false when that server has no row for it.
bool RowOn(InProcessCluster& cluster, int rank, uint32_t table, uint64_t key,
           std::vector<float>* row) {
  bool found = false;
  Status s = cluster.at(rank).server->tables().ForEachShard(
      table, [&](int, EmbeddingTable& t) {
        if (t.Lookup(key, row ? row->data() : nullptr, nullptr, nullptr)) found = true;
      });
  EXPECT_TRUE(s.ok()) << s;
  return found;
}

std::vector<float> Gradients(size_t n, int dim, float scale) {
  std::vector<float> g(n * dim);
  for (size_t i = 0; i < g.size(); ++i) g[i] = scale * static_cast<float>((i % 7) + 1) / 8.0f;
  return g;
}

class ServerLoopbackTest : public ::testing::Test {
 protected:
  // Clients for sync workers 0 and 1 (the rank each request carries).
  void ConnectTwoWorkers() {
    worker0_ = ConnectTo(cluster_, {.rank = 0});
    worker1_ = ConnectTo(cluster_, {.rank = 1});
    ASSERT_NE(worker0_, nullptr);
    ASSERT_NE(worker1_, nullptr);
  }

  JobSpec job_ = TestJob();
  InProcessCluster cluster_{job_, 2};
  decltype(ConnectTo(cluster_)) worker0_, worker1_;
};

TEST_F(ServerLoopbackTest, PullReturnsTheDeterministicInitialValues) {
  auto client = ConnectTo(cluster_);
  ASSERT_NE(client, nullptr);
  const auto keys = SomeKeys(500);
  std::vector<float> user(keys.size() * kUserDim, -1.0f);
  std::vector<float> item(keys.size() * kItemDim, -1.0f);
  auto user_pulled = client->PullAsync(kUserTable, keys, kUserDim, user.data());
  auto item_pulled = client->PullAsync(kItemTable, keys, kItemDim, item.data());
  ASSERT_EQ(user_pulled.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(item_pulled.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(user_pulled.get().ok());
  ASSERT_TRUE(item_pulled.get().ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto want_user = InitialRow(job_.tables[kUserTable], keys[i]);
    const auto want_item = InitialRow(job_.tables[kItemTable], keys[i]);
    for (int d = 0; d < kUserDim; ++d) ASSERT_EQ(user[i * kUserDim + d], want_user[d]) << i;
    for (int d = 0; d < kItemDim; ++d) ASSERT_EQ(item[i * kItemDim + d], want_item[d]) << i;
  }
  // Tables differ by seed: the same key has different rows in them.
  EXPECT_NE(user[0], item[0]);
}

TEST_F(ServerLoopbackTest, PushUpdatesTheRowOnItsOwnerOnly) {
  auto client = ConnectTo(cluster_);
  ASSERT_NE(client, nullptr);
  const auto keys = SomeKeys(300, 2);
  const auto grads = Gradients(keys.size(), kUserDim, 1.0f);
  StatusOr<PushResult> pushed = client->Push(kUserTable, keys, kUserDim, grads.data(), {.step = 1});
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, keys.size());
  EXPECT_EQ(pushed->dropped, 0u);

  std::vector<float> pulled(keys.size() * kUserDim);
  ASSERT_TRUE(client->Pull(kUserTable, keys, kUserDim, pulled.data()).ok());
  size_t on_server[2] = {0, 0};
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto init = InitialRow(job_.tables[kUserTable], keys[i]);
    for (int d = 0; d < kUserDim; ++d)
      ASSERT_FLOAT_EQ(pulled[i * kUserDim + d], init[d] - kUserLr * grads[i * kUserDim + d]);
    const int owner = JumpConsistentHash(keys[i], 2);
    std::vector<float> row(kUserDim);
    ASSERT_TRUE(RowOn(cluster_, owner, kUserTable, keys[i], &row)) << "key " << keys[i];
    EXPECT_FALSE(RowOn(cluster_, 1 - owner, kUserTable, keys[i], nullptr)) << "key " << keys[i];
    EXPECT_FLOAT_EQ(row[0], pulled[i * kUserDim]);
    ++on_server[owner];
  }
  EXPECT_GT(on_server[0], 100u);
  EXPECT_GT(on_server[1], 100u);

  StatusOr<std::vector<ServerStatsValue>> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 2u);
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ((*stats)[s].tables.size(), 2u);
    EXPECT_EQ((*stats)[s].tables[kUserTable].name, "user");
    EXPECT_EQ((*stats)[s].tables[kUserTable].rows, on_server[s]) << "server " << s;
    EXPECT_EQ((*stats)[s].tables[kItemTable].rows, 0u);
  }
}

TEST_F(ServerLoopbackTest, RepeatedKeysArePulledEverywhereAndPushedAsOneSum) {
  auto client = ConnectTo(cluster_);
  ASSERT_NE(client, nullptr);
  const auto distinct = SomeKeys(3, 3);
  const std::vector<uint64_t> keys = {distinct[0], distinct[1], distinct[0], distinct[2],
                                      distinct[0], distinct[1]};
  std::vector<float> pulled(keys.size() * kItemDim);
  ASSERT_TRUE(client->Pull(kItemTable, keys, kItemDim, pulled.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto init = InitialRow(job_.tables[kItemTable], keys[i]);
    for (int d = 0; d < kItemDim; ++d) ASSERT_EQ(pulled[i * kItemDim + d], init[d]) << i;
  }

  // Adagrad is not linear: one update by the sum differs from one update per repeat.
  const auto grads = Gradients(keys.size(), kItemDim, 0.5f);
  StatusOr<PushResult> pushed = client->Push(kItemTable, keys, kItemDim, grads.data());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, 3u);
  ASSERT_TRUE(client->Pull(kItemTable, keys, kItemDim, pulled.data()).ok());
  RowOptimizer adagrad(job_.tables[kItemTable].optimizer);
  for (int u = 0; u < 3; ++u) {
    std::vector<float> w = InitialRow(job_.tables[kItemTable], distinct[u]);
    std::vector<float> state(adagrad.StateFloats(kItemDim));
    adagrad.InitState(state.data(), kItemDim);
    std::vector<float> sum(kItemDim, 0.0f);
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == distinct[u])
        for (int d = 0; d < kItemDim; ++d) sum[d] += grads[i * kItemDim + d];
    adagrad.Apply(w.data(), state.data(), sum.data(), kItemDim, 1);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] != distinct[u]) continue;
      for (int d = 0; d < kItemDim; ++d) EXPECT_EQ(pulled[i * kItemDim + d], w[d]) << i;
    }
  }
}

TEST_F(ServerLoopbackTest, SyncStepWaitsForBothWorkersAndAppliesTheSumOnce) {
  ASSERT_NO_FATAL_FAILURE(ConnectTwoWorkers());
  const auto keys = SomeKeys(64, 4);
  const auto g0 = Gradients(keys.size(), kItemDim, 1.0f);
  const auto g1 = Gradients(keys.size(), kItemDim, -0.25f);
  auto first = worker0_->PushAsync(kItemTable, keys, kItemDim, g0.data(),
                                  {.step = 7, .sync = true, .worker_rank = 0, .num_workers = 2});
  EXPECT_EQ(first.wait_for(300ms), std::future_status::timeout)
      << "a sync push must not be answered before every worker's push of the step";
  std::vector<float> before(keys.size() * kItemDim);
  ASSERT_TRUE(worker1_->Pull(kItemTable, keys, kItemDim, before.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i)
    ASSERT_EQ(before[i * kItemDim], InitialRow(job_.tables[kItemTable], keys[i])[0])
        << "nothing is applied while the step is incomplete";

  auto second = worker1_->PushAsync(kItemTable, keys, kItemDim, g1.data(),
                                   {.step = 7, .sync = true, .worker_rank = 1, .num_workers = 2});
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(second.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(first.get().ok());
  ASSERT_TRUE(second.get().ok());

  std::vector<float> after(keys.size() * kItemDim);
  ASSERT_TRUE(worker0_->Pull(kItemTable, keys, kItemDim, after.data()).ok());
  RowOptimizer adagrad(job_.tables[kItemTable].optimizer);
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> w = InitialRow(job_.tables[kItemTable], keys[i]);
    std::vector<float> state(adagrad.StateFloats(kItemDim));
    adagrad.InitState(state.data(), kItemDim);
    std::vector<float> sum(kItemDim);
    for (int d = 0; d < kItemDim; ++d) sum[d] = g0[i * kItemDim + d] + g1[i * kItemDim + d];
    adagrad.Apply(w.data(), state.data(), sum.data(), kItemDim, 1);
    for (int d = 0; d < kItemDim; ++d) ASSERT_EQ(after[i * kItemDim + d], w[d]) << i;
  }
}

// A sync step counts one part per worker on every server: a worker whose keys all live on
// server 0 still tells server 1 it has nothing for the step, or server 1 would wait for it
// for ever. An empty push goes to every server too.
TEST_F(ServerLoopbackTest, ASyncPushWithNoKeysForAServerStillCompletesItsStep) {
  ASSERT_NO_FATAL_FAILURE(ConnectTwoWorkers());
  const auto keys = SomeKeys(64, 4);
  std::vector<uint64_t> on_server0;
  for (uint64_t key : keys)
    if (ps::JumpConsistentHash(key, 2) == 0) on_server0.push_back(key);
  ASSERT_FALSE(on_server0.empty());
  ASSERT_LT(on_server0.size(), keys.size()) << "the keys must span both servers";
  const auto g0 = Gradients(keys.size(), kItemDim, 1.0f);
  const auto g1 = Gradients(on_server0.size(), kItemDim, -0.25f);
  for (uint64_t step : {7, 8}) {
    auto first = worker0_->PushAsync(kItemTable, keys, kItemDim, g0.data(),
                                    {.step = step, .sync = true, .worker_rank = 0, .num_workers = 2});
    // Step 7: worker 1 has keys on server 0 only; step 8: none at all.
    const std::span<const uint64_t> mine =
        step == 7 ? std::span<const uint64_t>(on_server0) : std::span<const uint64_t>();
    auto second = worker1_->PushAsync(kItemTable, mine, kItemDim, g1.data(),
                                     {.step = step, .sync = true, .worker_rank = 1, .num_workers = 2});
    ASSERT_EQ(first.wait_for(10s), std::future_status::ready) << "step " << step;
    ASSERT_EQ(second.wait_for(10s), std::future_status::ready) << "step " << step;
    auto pushed0 = first.get();
    auto pushed1 = second.get();
    ASSERT_TRUE(pushed0.ok()) << pushed0.status();
    ASSERT_TRUE(pushed1.ok()) << pushed1.status();
    EXPECT_EQ(pushed0->applied, keys.size());
    EXPECT_EQ(pushed1->applied, mine.size());
  }
}

TEST_F(ServerLoopbackTest, DenseBlocksSpreadByIdAndUpdateAsyncAndSync) {
  ASSERT_NO_FATAL_FAILURE(ConnectTwoWorkers());
  std::vector<std::vector<float>> init = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}, {10}};
  std::vector<std::string> names;  // DenseBlockIn holds a view: the names must outlive it
  for (uint32_t id = 0; id < init.size(); ++id) names.push_back("block" + std::to_string(id));
  std::vector<DenseBlockIn> blocks;
  for (uint32_t id = 0; id < init.size(); ++id) blocks.push_back({id, names[id], init[id]});
  ASSERT_TRUE(worker0_->DenseInit(blocks).ok());
  ASSERT_TRUE(worker1_->DenseInit(blocks).ok()) << "a second init keeps the blocks";
  EXPECT_EQ(cluster_.at(0).server->dense().num_blocks(), 2u);  // ids 0, 2
  EXPECT_EQ(cluster_.at(1).server->dense().num_blocks(), 2u);  // ids 1, 3
  EXPECT_TRUE(cluster_.at(1).server->dense().Size(3).ok());

  std::vector<std::vector<float>> out = {{0, 0, 0}, {0, 0}, {0, 0, 0, 0}, {0}};
  std::vector<DenseBlockOut> outs;
  for (uint32_t id = 0; id < out.size(); ++id) outs.push_back({id, out[id]});
  ASSERT_TRUE(worker0_->DensePull(outs).ok());
  EXPECT_EQ(out, init);

  // Async: applied per push, SGD lr 0.25.
  std::vector<std::vector<float>> g = {{4, 4, 4}, {8, 8}, {-4, 0, 4, 8}, {2}};
  std::vector<DenseBlockIn> grads;
  for (uint32_t id = 0; id < g.size(); ++id) grads.push_back({id, "", g[id]});
  StatusOr<PushResult> pushed = worker0_->DensePush(grads);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, 4u);
  ASSERT_TRUE(worker1_->DensePull(outs).ok());
  for (size_t b = 0; b < init.size(); ++b)
    for (size_t k = 0; k < init[b].size(); ++k)
      EXPECT_FLOAT_EQ(out[b][k], init[b][k] - testing::kDenseLr * g[b][k]);
  const auto after_async = out;

  // Sync: both workers' gradients of step 3 summed, applied once, replies after both.
  auto first = worker0_->DensePushAsync(grads, {.step = 3, .sync = true, .worker_rank = 0,
                                               .num_workers = 2});
  EXPECT_EQ(first.wait_for(300ms), std::future_status::timeout);
  auto second = worker1_->DensePushAsync(grads, {.step = 3, .sync = true, .worker_rank = 1,
                                                .num_workers = 2});
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(second.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(first.get().ok());
  ASSERT_TRUE(second.get().ok());
  ASSERT_TRUE(worker0_->DensePull(outs).ok());
  for (size_t b = 0; b < init.size(); ++b)
    for (size_t k = 0; k < init[b].size(); ++k)
      EXPECT_FLOAT_EQ(out[b][k], after_async[b][k] - testing::kDenseLr * 2 * g[b][k]);
}

TEST_F(ServerLoopbackTest, ManyPullsInFlightEachLandInItsOwnBuffer) {
  auto client = ConnectTo(cluster_);
  ASSERT_NE(client, nullptr);
  constexpr int kInFlight = 16;
  std::vector<std::vector<uint64_t>> keys;
  std::vector<std::vector<float>> out(kInFlight);
  std::vector<std::future<Status>> pulls;
  for (int r = 0; r < kInFlight; ++r) keys.push_back(SomeKeys(200, 100 + r));
  for (int r = 0; r < kInFlight; ++r) {
    out[r].assign(keys[r].size() * kUserDim, 0.0f);
    pulls.push_back(client->PullAsync(kUserTable, keys[r], kUserDim, out[r].data()));
  }
  for (int r = 0; r < kInFlight; ++r) {
    ASSERT_EQ(pulls[r].wait_for(10s), std::future_status::ready);
    ASSERT_TRUE(pulls[r].get().ok());
    for (size_t i = 0; i < keys[r].size(); i += 17)
      ASSERT_EQ(out[r][i * kUserDim], InitialRow(job_.tables[kUserTable], keys[r][i])[0]);
  }
}

// Pushes gradients of 1 with a NaN in key 5's row: refused, naming that key.
void ExpectPushWithNaNRefused(Client& client, const std::vector<uint64_t>& keys) {
  auto grads = Gradients(keys.size(), kUserDim, 1.0f);
  grads[5 * kUserDim + 3] = std::numeric_limits<float>::quiet_NaN();
  StatusOr<PushResult> pushed = client.Push(kUserTable, keys, kUserDim, grads.data());
  EXPECT_EQ(pushed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pushed.status().message().find("key " + std::to_string(keys[5])), std::string::npos)
      << pushed.status();
}

TEST_F(ServerLoopbackTest, ClientRefusesWhatItCanCheckAndReportsRemoteErrors) {
  auto client = ConnectTo(cluster_, {.check_finite = true});
  ASSERT_NE(client, nullptr);
  const auto keys = SomeKeys(10, 5);
  std::vector<float> out(keys.size() * kUserDim);

  // The caller's buffer is dim 4, the table's rows are dim 8: refused, naming both.
  Status wrong_dim = client->Pull(kUserTable, keys, kItemDim, out.data());
  EXPECT_EQ(wrong_dim.code(), StatusCode::kInvalidArgument) << wrong_dim;
  EXPECT_NE(wrong_dim.message().find("dim 8"), std::string::npos) << wrong_dim;
  EXPECT_NE(wrong_dim.message().find("expects 4"), std::string::npos) << wrong_dim;

  // A NaN is caught before anything is sent: no server applies its part.
  ExpectPushWithNaNRefused(*client, keys);
  for (uint64_t key : keys) {
    std::vector<float> row(kUserDim);
    if (RowOn(cluster_, JumpConsistentHash(key, 2), kUserTable, key, &row)) {
      EXPECT_EQ(row, InitialRow(job_.tables[kUserTable], key)) << "key " << key << " changed";
    }
  }

  // A remote error comes back as a value naming the server.
  Status unknown = client->Pull(42, keys, kUserDim, out.data());
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound) << unknown;
  EXPECT_NE(unknown.message().find("server "), std::string::npos) << unknown;

  // The client still works.
  EXPECT_TRUE(client->Pull(kUserTable, keys, kUserDim, out.data()).ok());
}

// By default only the servers check values (the trust boundary): the server that owns the
// NaN's key refuses its part whole, naming the key; the other server's part is applied.
TEST_F(ServerLoopbackTest, ServersRefuseTheirPartOfAPushHoldingNaN) {
  auto client = ConnectTo(cluster_);
  ASSERT_NE(client, nullptr);
  const auto keys = SomeKeys(10, 6);
  ExpectPushWithNaNRefused(*client, keys);
  const int bad_server = JumpConsistentHash(keys[5], 2);
  int applied = 0;
  for (uint64_t key : keys) {
    std::vector<float> row(kUserDim);
    const int owner = JumpConsistentHash(key, 2);
    const bool has_row = RowOn(cluster_, owner, kUserTable, key, &row);
    if (owner == bad_server) {
      if (has_row) {
        EXPECT_EQ(row, InitialRow(job_.tables[kUserTable], key)) << "key " << key;
      }
    } else {
      ASSERT_TRUE(has_row);
      EXPECT_NE(row, InitialRow(job_.tables[kUserTable], key)) << "key " << key;
      ++applied;
    }
  }
  EXPECT_GT(applied, 0) << "the keys happen to sit on one server; pick other keys";
}

TEST(ClientTimeout, PullToAServerThatNeverAnswersFailsWithDeadlineAfterRetries) {
  // A ROUTER that reads requests and never answers, counting what arrives.
  zmq::context_t context(1);
  zmq::socket_t silent(context, zmq::socket_type::router);
  silent.set(zmq::sockopt::linger, 0);
  silent.bind("tcp://127.0.0.1:0");
  const std::string endpoint = silent.get(zmq::sockopt::last_endpoint);
  auto client = Client::Connect({endpoint}, {.timeout = std::chrono::milliseconds(200),
                                             .pull_attempts = 3});
  ASSERT_TRUE(client.ok()) << client.status();
  const auto keys = SomeKeys(4);
  std::vector<float> out(keys.size() * kUserDim);
  const auto start = std::chrono::steady_clock::now();
  auto pulled = (*client)->PullAsync(kUserTable, keys, kUserDim, out.data());
  int received = 0;
  while (pulled.wait_for(10ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - start < 10s) {
    std::vector<zmq::message_t> frames;
    while (zmq::recv_multipart(silent, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      ++received;
      frames.clear();
    }
  }
  ASSERT_EQ(pulled.wait_for(0s), std::future_status::ready);
  Status status = pulled.get();
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status;
  EXPECT_EQ(received, 3) << "a pull is sent again on timeout, pull_attempts times in all";
}

}  // namespace
}  // namespace mtps::ps
