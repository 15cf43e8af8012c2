// What one request may make a server spend: replies too large to build are refused (not
// thrown, never a crash), the client splits big pulls and pushes below the limit, a block
// named twice, a sync push naming millions of workers, and gradients that would push
// optimizer state to infinity are refused; the server keeps serving after each.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ps/client.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using Body = proto::Envelope::Body::Builder;
using testing::AsData;
using testing::CallRaw;
using testing::InitialRow;
using testing::InProcessCluster;
using testing::kItemDim;
using testing::kItemTable;
using testing::kUserDim;
using testing::kUserLr;
using testing::kUserTable;
using testing::SomeKeys;
using testing::TestJob;

std::unique_ptr<RpcClient> RawClient(const std::string& endpoint) {
  auto client = RpcClient::Connect(endpoint, proto::Role::CLIENT, -1);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

StatusOr<IncomingMessage> RawPull(RpcClient& client, uint32_t table,
                                  const std::vector<uint64_t>& keys) {
  return CallRaw(client, [&](Body body) {
    auto pull = body.initSparsePull();
    pull.setTableId(table);
    pull.setKeys(AsData(keys));
  });
}

// The probe that once crashed a server (use after free): a pull whose reply is larger
// than one Cap'n Proto Data field can hold. The widest table makes it a small request.
TEST(ServerLimitsTest, PullTooLargeForAnyReplyIsRefusedAndTheServerGoesOn) {
  std::string yaml = testing::kTestJob;
  yaml.replace(yaml.find("dim: 4\n"), 7, "dim: 4096\n");
  JobSpec job = TestJob(yaml);
  InProcessCluster cluster(job, 1, 2, ServerOptions{.max_reply_bytes = SIZE_MAX});
  auto raw = RawClient(cluster.at(0).endpoint);
  const size_t too_many = kMaxDataFieldBytes / (4096 * sizeof(float)) + 1;
  for (int round = 0; round < 3; ++round) {
    StatusOr<IncomingMessage> reply = RawPull(*raw, kItemTable, SomeKeys(too_many, round + 1));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), StatusCode::kResourceExhausted) << reply.status();
    EXPECT_NE(reply.status().message().find(std::to_string(too_many) + " keys"),
              std::string::npos)
        << reply.status();
    EXPECT_NE(reply.status().message().find("split the request"), std::string::npos);
    StatusOr<IncomingMessage> good = RawPull(*raw, kUserTable, SomeKeys(5));
    ASSERT_TRUE(good.ok()) << good.status();
  }
  EXPECT_EQ(cluster.at(0).rpc->counters().handler_errors, 0u);
  EXPECT_EQ(cluster.at(0).server->rejected_requests(), 3u);
}

TEST(ServerLimitsTest, PullOverTheConfiguredReplyLimitIsRefused) {
  JobSpec job = TestJob();
  InProcessCluster cluster(job, 1, 2, ServerOptions{.max_reply_bytes = 4096});
  auto raw = RawClient(cluster.at(0).endpoint);
  const size_t fits = 4096 / (kUserDim * sizeof(float));
  ASSERT_TRUE(RawPull(*raw, kUserTable, SomeKeys(fits)).ok());
  StatusOr<IncomingMessage> reply = RawPull(*raw, kUserTable, SomeKeys(fits + 1));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(reply.status().message().find("limit of 4096"), std::string::npos)
      << reply.status();
}

// The client cuts pulls and async pushes into requests under its limit; the answer is the
// same as one request would give, duplicates included.
TEST(ServerLimitsTest, ClientSplitsLargeRequestsBelowTheServersLimit) {
  JobSpec job = TestJob();
  InProcessCluster cluster(job, 2, 2, ServerOptions{.max_reply_bytes = 4096});
  ClientOptions options;
  options.max_request_bytes = 1024;  // 32 user rows, 25 with keys, per request
  auto client = Client::Connect(cluster.endpoints(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<uint64_t> keys = SomeKeys(700, 9);
  keys.insert(keys.end(), keys.begin(), keys.begin() + 50);  // repeats, far apart
  const TableSpec& spec = job.tables[kUserTable];

  std::vector<float> rows(keys.size() * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, rows.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> expected = InitialRow(spec, keys[i]);
    ASSERT_EQ(0, std::memcmp(rows.data() + i * kUserDim, expected.data(),
                             kUserDim * sizeof(float)))
        << "key " << i;
  }

  std::vector<float> grads(keys.size() * kUserDim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 97);
  StatusOr<PushResult> pushed = (*client)->Push(kUserTable, keys, kUserDim, grads.data());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, 700u);

  std::vector<float> after(keys.size() * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, after.data()).ok());
  for (size_t i = 0; i < 700; ++i) {
    for (int k = 0; k < kUserDim; ++k) {
      float g = grads[i * kUserDim + k];
      if (i < 50) g += grads[(700 + i) * kUserDim + k];  // the repeat's gradient is summed
      const float expected = rows[i * kUserDim + k] - kUserLr * g;
      ASSERT_NEAR(after[i * kUserDim + k], expected, 1e-6f) << "key " << i << " elem " << k;
    }
  }
}

TEST(ServerLimitsTest, DensePullNamingABlockTwiceIsRefused) {
  JobSpec job = TestJob();
  InProcessCluster cluster(job, 1);
  auto raw = RawClient(cluster.at(0).endpoint);
  const std::vector<float> values(1000, 1.0f);
  ASSERT_TRUE(CallRaw(*raw, [&](Body body) {
                auto block = body.initDenseInit().initBlocks(1)[0];
                block.setId(0);
                block.setName("w");
                block.setValues(AsData(values));
              }).ok());
  StatusOr<IncomingMessage> reply = CallRaw(*raw, [&](Body body) {
    auto ids = body.initDensePull().initBlockIds(100);
    for (uint32_t i = 0; i < 100; ++i) ids.set(i, 0);
  });
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("listed twice"), std::string::npos) << reply.status();
  StatusOr<IncomingMessage> once = CallRaw(*raw, [&](Body body) {
    body.initDensePull().initBlockIds(1).set(0, 0);
  });
  ASSERT_TRUE(once.ok()) << once.status();
}

void FillSyncPush(Body body, const std::vector<uint64_t>& keys, const std::vector<float>& grads,
                  uint32_t num_workers) {
  auto push = body.initSparsePush();
  push.setTableId(kUserTable);
  push.setKeys(AsData(keys));
  push.setGradients(AsData(grads));
  push.setSync(true);
  push.setStep(1);
  push.setWorkerRank(0);
  push.setNumWorkers(num_workers);
}

TEST(ServerLimitsTest, SyncPushCountsAreCheckedAgainstTheCluster) {
  JobSpec job = TestJob();
  const std::vector<uint64_t> keys = SomeKeys(2);
  const std::vector<float> grads(2 * kUserDim, 0.1f);
  {
    // Outside a cluster: bounded.
    InProcessCluster standalone(job, 1);
    auto raw = RawClient(standalone.at(0).endpoint);
    StatusOr<IncomingMessage> reply =
        CallRaw(*raw, [&](Body b) { FillSyncPush(b, keys, grads, 10'000'000); });
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(reply.status().message().find("numWorkers 10000000"), std::string::npos);
    reply = CallRaw(*raw, [&](Body b) {
      auto push = b.initDensePush();
      push.setSync(true);
      push.setNumWorkers(2'147'483'647);
      push.initBlocks(0);
    });
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  }
  // In a cluster of 2 workers: exactly 2.
  InProcessCluster cluster(job, 1, 2, ServerOptions{.num_workers = 2});
  auto raw = RawClient(cluster.at(0).endpoint);
  StatusOr<IncomingMessage> reply = CallRaw(*raw, [&](Body b) { FillSyncPush(b, keys, grads, 3); });
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("the cluster has 2"), std::string::npos)
      << reply.status();
}

// 3e38 is finite, but its square is not: Adagrad's accumulator would become infinite and
// the row would never move again. Such a push is refused whole and the row stays trainable.
TEST(ServerLimitsTest, GradientBeyondTheLimitIsRefusedAndRowsStayTrainable) {
  JobSpec job = TestJob();
  InProcessCluster cluster(job, 1);
  auto client = Client::Connect(cluster.endpoints());
  ASSERT_TRUE(client.ok()) << client.status();
  const std::vector<uint64_t> keys = SomeKeys(3);
  std::vector<float> before(keys.size() * kItemDim);
  ASSERT_TRUE((*client)->Pull(kItemTable, keys, kItemDim, before.data()).ok());

  std::vector<float> huge(keys.size() * kItemDim, 0.01f);
  huge[5] = 3e38f;
  StatusOr<PushResult> pushed = (*client)->Push(kItemTable, keys, kItemDim, huge.data());
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pushed.status().message().find("max_gradient_abs"), std::string::npos)
      << pushed.status();

  std::vector<float> unchanged(keys.size() * kItemDim);
  ASSERT_TRUE((*client)->Pull(kItemTable, keys, kItemDim, unchanged.data()).ok());
  EXPECT_EQ(unchanged, before);

  const std::vector<float> normal(keys.size() * kItemDim, 0.5f);
  ASSERT_TRUE((*client)->Push(kItemTable, keys, kItemDim, normal.data()).ok());
  std::vector<float> after(keys.size() * kItemDim);
  ASSERT_TRUE((*client)->Pull(kItemTable, keys, kItemDim, after.data()).ok());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(std::isfinite(after[i]));
    EXPECT_LT(after[i], before[i]) << "element " << i << " did not move";
  }
}

TEST(ServerLimitsTest, MaxGradientAbsIsAJobSetting) {
  std::string yaml = testing::kTestJob;
  yaml.replace(yaml.find("training:\n"), 10, "training:\n  max_gradient_abs: 2\n");
  JobSpec job = TestJob(yaml);
  EXPECT_EQ(job.training.max_gradient_abs, 2.0f);
  InProcessCluster cluster(job, 1);
  auto client = Client::Connect(cluster.endpoints());
  ASSERT_TRUE(client.ok());
  const std::vector<uint64_t> keys = SomeKeys(1);
  std::vector<float> grads(kUserDim, 1.5f);
  EXPECT_TRUE((*client)->Push(kUserTable, keys, kUserDim, grads.data()).ok());
  grads[3] = -2.5f;
  EXPECT_FALSE((*client)->Push(kUserTable, keys, kUserDim, grads.data()).ok());

  yaml.replace(yaml.find("max_gradient_abs: 2"), 19, "max_gradient_abs: 0");
  StatusOr<JobSpec> bad = ParseJobSpec(yaml, "test job");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("training.max_gradient_abs"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace mtps::ps
