// A server's memory budget: past it no new row is created — pulls of new keys get their
// initial values, pushes to them are dropped, both counted — while existing rows train on.
#include <gtest/gtest.h>

#include <vector>

#include "ps/client.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using testing::InitialRow;
using testing::InProcessCluster;
using testing::kUserDim;
using testing::kUserTable;
using testing::SomeKeys;
using testing::TestJob;

uint64_t TableBytes(InProcessCluster& cluster) {
  uint64_t bytes = 0;
  for (uint32_t t = 0; t < 2; ++t) bytes += cluster.at(0).server->tables().Counters(t)->bytes;
  return bytes;
}

TEST(MemoryBudgetTest, PastTheBudgetNewKeysGetNoRowsAndOldRowsKeepTraining) {
  const JobSpec job = TestJob();
  uint64_t empty_bytes = 0;
  {
    InProcessCluster probe(job, 1, 1);
    empty_bytes = TableBytes(probe);
  }
  // Room for the first request's rows, not for more. One shard thread: tables report their
  // size after each request, so with several shards the budget is checked partway.
  InProcessCluster cluster(job, 1, 1, ServerOptions{.memory_budget_bytes = empty_bytes + 1});
  auto client = Client::Connect(cluster.endpoints());
  ASSERT_TRUE(client.ok()) << client.status();
  const std::vector<uint64_t> first = SomeKeys(1000, 1), second = SomeKeys(1000, 2);
  std::vector<float> rows(1000 * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, first, kUserDim, rows.data()).ok());
  TableCounters counters = *cluster.at(0).server->tables().Counters(kUserTable);
  EXPECT_EQ(counters.rows, 1000u);
  EXPECT_EQ(counters.budget_refused, 0u);

  // Spent: new keys are answered with their initial values and get no row.
  ASSERT_TRUE((*client)->Pull(kUserTable, second, kUserDim, rows.data()).ok());
  for (size_t i = 0; i < second.size(); i += 97) {
    const std::vector<float> expected = InitialRow(job.tables[kUserTable], second[i]);
    EXPECT_EQ(std::vector<float>(rows.begin() + i * kUserDim, rows.begin() + (i + 1) * kUserDim),
              expected);
  }
  counters = *cluster.at(0).server->tables().Counters(kUserTable);
  EXPECT_EQ(counters.rows, 1000u);
  EXPECT_EQ(counters.budget_refused, 1000u);
  const uint64_t bytes_when_spent = TableBytes(cluster);

  // Pushes to new keys are dropped; pushes to existing rows apply.
  const std::vector<float> grads(1000 * kUserDim, 0.5f);
  StatusOr<PushResult> dropped = (*client)->Push(kUserTable, second, kUserDim, grads.data());
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(dropped->applied, 0u);
  EXPECT_EQ(dropped->dropped, 1000u);
  StatusOr<PushResult> applied = (*client)->Push(kUserTable, first, kUserDim, grads.data());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->applied, 1000u);
  EXPECT_EQ(TableBytes(cluster), bytes_when_spent) << "the server grew past its budget";

  // The budget and the refusals reach /metrics.
  const std::string text = cluster.at(0).metrics.Render();
  EXPECT_NE(text.find("mtps_ps_memory_budget_bytes " + std::to_string(empty_bytes + 1)),
            std::string::npos);
  EXPECT_NE(text.find("mtps_ps_table_budget_refused_rows_total{table=\"user\"} 2000"),
            std::string::npos)
      << text;
}

TEST(MemoryBudgetTest, NoBudgetMeansNoLimit) {
  InProcessCluster cluster(TestJob(), 1);
  auto client = Client::Connect(cluster.endpoints());
  ASSERT_TRUE(client.ok());
  std::vector<float> rows(3000 * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, SomeKeys(3000, 3), kUserDim, rows.data()).ok());
  EXPECT_EQ(cluster.at(0).server->tables().Counters(kUserTable)->rows, 3000u);
  EXPECT_EQ(cluster.at(0).server->tables().Counters(kUserTable)->budget_refused, 0u);
}

}  // namespace
}  // namespace mtps::ps
