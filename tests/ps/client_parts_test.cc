// ps::Client sending one server's unique keys in several parts (the in-order routing):
// each part is a range of the caller's keys and rows, and the answer is the same as one
// request would give.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ps/client.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using namespace testing;

TEST(ClientPartsTest, UniqueKeysToOneServerGoAsRangesInSeveralParts) {
  JobSpec job = TestJob();
  InProcessCluster cluster(job, 1, 2);
  ClientOptions options;
  options.max_request_bytes = 2048;  // pulls: 64 user rows per request
  options.push_part_bytes = 1000;    // pushes: 25 keys with their rows per request
  auto client = Client::Connect(cluster.endpoints(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  const std::vector<uint64_t> keys = SomeKeys(1000, 4);
  const TableSpec& spec = job.tables[kUserTable];

  std::vector<float> rows(keys.size() * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, rows.data(), {.keys_unique = true}).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::vector<float> expected = InitialRow(spec, keys[i]);
    ASSERT_EQ(0, std::memcmp(rows.data() + i * kUserDim, expected.data(), kUserDim * sizeof(float)))
        << "key " << i;
  }

  std::vector<float> grads(keys.size() * kUserDim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 89);
  StatusOr<PushResult> pushed =
      (*client)->Push(kUserTable, keys, kUserDim, grads.data(), {.keys_unique = true});
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, keys.size());

  std::vector<float> after(keys.size() * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, after.data(), {.keys_unique = true}).ok());
  for (size_t i = 0; i < after.size(); ++i) {
    ASSERT_FLOAT_EQ(after[i], rows[i] - kUserLr * grads[i]) << "value " << i;
  }
}

}  // namespace
}  // namespace mtps::ps
