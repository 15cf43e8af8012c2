// The memory planner: its per-table figures are what EmbeddingTable allocates (same
// RowLayout), a real mtps-server's resident memory grows by the plan within 5% (two
// sizes x two dims x two optimizers), bad inputs to PlanMemory and to mtps-plan get
// clear errors, and mtps-plan counts distinct keys in generated data.
#include "ps/memory_plan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ps/client.h"
#include "ps/embedding_table.h"
#include "tests/common/child_process.h"
#include "tests/common/test_files.h"

namespace mtps::ps {
namespace {

using namespace std::chrono_literals;
using mtps::testing::BinPath;
using mtps::testing::ChildProcess;
using mtps::testing::ScratchDir;

// Tables 0..3: dim 8 and 64, Adagrad and Adam; table 4: bf16, capped, admission sketch.
const char kJob[] = R"(
name: plan-test
data: {format: mtb, train: [DATA]}
features:
  sparse:
    - {name: a, table: d8_adagrad}
    - {name: b, table: d8_adam}
    - {name: c, table: d64_adagrad}
    - {name: d, table: d64_adam}
    - {name: e, table: capped_bf16}
    - {name: f, table: capped_bf16}
tables:
  - {name: d8_adagrad, dim: 8, optimizer: {type: adagrad}}
  - {name: d8_adam, dim: 8, optimizer: {type: adam}}
  - {name: d64_adagrad, dim: 64, optimizer: {type: adagrad}}
  - {name: d64_adam, dim: 64, optimizer: {type: adam}}
  - {name: capped_bf16, dim: 33, precision: bf16, capacity_rows: 100000, admit_min_count: 2,
     optimizer: {type: adam}}
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
training: {batch_size: 512, prefetch: 2}
)";

JobSpec Job() {
  auto job = ParseJobSpec(kJob);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : JobSpec{};
}

TEST(MemoryPlanTest, TableFiguresAreWhatTheTableAllocates) {
  for (const TableSpec& spec : Job().tables) {
    auto table = EmbeddingTable::Create(spec);
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(ShardRowCapacity(spec, 1), (*table)->RowCapacity()) << spec.name;
    const RowLayout layout = RowLayoutFor(spec);
    const uint64_t sketch = AdmissionSketchBytes(spec, ShardRowLimit(spec, 1));
    std::vector<uint64_t> keys(70001);
    std::iota(keys.begin(), keys.end(), 1);
    std::vector<float> out(keys.size() * spec.dim);
    for (int sighting = 0; sighting < 2; ++sighting) {
      (*table)->Pull(keys.data(), keys.size(), out.data(), 1, true);
    }
    const uint64_t rows = (*table)->rows();
    ASSERT_GT(rows, 60000u) << spec.name;
    EXPECT_EQ(TableBytesFor(layout, rows, sketch).total(), (*table)->MemoryBytes()) << spec.name;
  }
  // A byte budget gives the same row capacity in the plan and in the table.
  TableSpec budgeted = Job().tables[3];
  budgeted.capacity_bytes = 50 << 20;
  auto table = EmbeddingTable::Create(budgeted, 3);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(ShardRowCapacity(budgeted, 3), (*table)->RowCapacity());
}

TEST(MemoryPlanTest, RowCostsAddUpAndTheBudgetGivesTheFewestServersThatFit) {
  PlanInput input{.servers = 4, .shards = 4, .budget_bytes = 2ull << 30, .headroom = 0.25};
  for (const TableSpec& t : Job().tables) input.tables.push_back({t.name, 3'000'000});
  auto plan = PlanMemory(Job(), input);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const TablePlan& d64 = plan->tables[3];
  EXPECT_EQ(d64.per_row.weights, 256);
  EXPECT_EQ(d64.per_row.state, 512);
  EXPECT_EQ(d64.per_row.metadata, 16);
  EXPECT_GT(d64.per_row.index, 8);
  EXPECT_LT(d64.per_row.index, 12);
  EXPECT_NEAR(d64.per_row.total() * d64.rows_per_server, double(d64.bytes_per_server),
              0.001 * double(d64.bytes_per_server));
  EXPECT_GT(d64.rows_per_server_max, d64.rows_per_server);
  const TablePlan& capped = plan->tables[4];
  EXPECT_EQ(capped.server_row_capacity, 100000u);
  EXPECT_EQ(capped.rows_per_server, 100000);
  EXPECT_EQ(capped.per_row.weights, 66);
  EXPECT_EQ(capped.per_row.metadata, 16 + 2);  // padding keeps the fp32 state aligned

  ASSERT_GT(plan->servers_needed, 1);
  auto fits = [&](int servers) {
    PlanInput at = input;
    at.servers = servers;
    auto p = PlanMemory(Job(), at);
    return double(p->bytes_per_server_max) <= 0.75 * double(input.budget_bytes);
  };
  EXPECT_TRUE(fits(plan->servers_needed));
  EXPECT_FALSE(fits(plan->servers_needed - 1));
  EXPECT_NE(PlanText(*plan).find("server(s) needed"), std::string::npos);
  EXPECT_NE(PlanJson(*plan).find("\"servers_needed\": " + std::to_string(plan->servers_needed)),
            std::string::npos);
}

TEST(MemoryPlanTest, BadInputsAreRefusedNamingTheProblem) {
  auto message = [](const PlanInput& input) {
    auto plan = PlanMemory(Job(), input);
    EXPECT_FALSE(plan.ok());
    return plan.ok() ? std::string() : plan.status().message();
  };
  EXPECT_NE(message({.tables = {{"nope", 5}}}).find("unknown table 'nope'"), std::string::npos);
  EXPECT_NE(message({.tables = {{"d8_adam", -3}}}).find("distinct keys must be >= 0, got -3"),
            std::string::npos);
  EXPECT_NE(message({.servers = 0}).find("servers must be >= 1"), std::string::npos);
  EXPECT_NE(message({.headroom = 1.0}).find("headroom"), std::string::npos);
}

// --- mtps-plan, the binary ---

struct PlanRun {
  int exit_code = -1;
  std::string output;
};

PlanRun RunPlan(const ScratchDir& dir, std::vector<std::string> args) {
  ChildProcess plan(BinPath("mtps-plan"), args, dir.File("plan.log"));
  PlanRun run;
  run.exit_code = plan.Wait(120s).value_or(-1);
  run.output = plan.Log();
  return run;
}

TEST(MtpsPlanTest, BadInputsExitTwoWithAClearError) {
  ScratchDir dir;
  std::string yaml = kJob;
  yaml.replace(yaml.find("DATA"), 4, dir.File("missing.mtb"));
  mtps::testing::WriteFile(dir.File("job.yaml"), yaml);
  const std::string config = "--config=" + dir.File("job.yaml");
  const std::string all = "d8_adagrad=1,d8_adam=1,d64_adagrad=1,d64_adam=1,capped_bf16=1";

  PlanRun ok = RunPlan(dir, {config, "--keys=" + all, "--servers=2"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  PlanRun unknown = RunPlan(dir, {config, "--keys=" + all + ",users=5"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown table 'users'"), std::string::npos) << unknown.output;
  PlanRun negative = RunPlan(dir, {config, "--keys=d8_adam=-5"});
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_NE(negative.output.find("distinct keys must be >= 0, got -5"), std::string::npos)
      << negative.output;
  PlanRun missing_table = RunPlan(dir, {config, "--keys=d8_adam=5"});
  EXPECT_EQ(missing_table.exit_code, 2);
  EXPECT_NE(missing_table.output.find("no distinct key count for table 'd8_adagrad'"),
            std::string::npos)
      << missing_table.output;
  PlanRun no_data = RunPlan(dir, {config, "--count_keys"});
  EXPECT_EQ(no_data.exit_code, 2);
  EXPECT_NE(no_data.output.find("missing.mtb: no such data file"), std::string::npos)
      << no_data.output;
}

TEST(MtpsPlanTest, CountsDistinctKeysInGeneratedData) {
  ScratchDir dir;
  ChildProcess gen(BinPath("mtps-datagen"),
                   {"--out", dir.File("data"), "--rows", "20000", "--users", "3000",
                    "--seed", "3"},
                   dir.File("datagen.log"));
  ASSERT_EQ(gen.Wait(120s).value_or(-1), 0) << gen.Log();
  PlanRun run = RunPlan(dir, {"--config=" + dir.File("data/job.yaml"), "--count_keys", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Users are drawn from 3000 with a power law over 18000 training records: most appear.
  const size_t at = run.output.find("\"distinct_keys\": ");
  ASSERT_NE(at, std::string::npos) << run.output;
  EXPECT_NE(run.output.find("\"servers_needed\""), std::string::npos);
}

// --- Predicted = measured: a real mtps-server's resident memory ---

uint64_t AnonymousResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) {
      std::istringstream in(line.substr(8));
      uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

class ServerMemoryTest : public ::testing::TestWithParam<int> {};

TEST_P(ServerMemoryTest, ResidentGrowthMatchesThePlanWithinFivePercent) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan a process's resident memory includes shadow memory and the "
                  "allocator's quarantine: there is no plan to compare it with";
#endif
  constexpr int kShards = 2;
  const uint64_t rows = static_cast<uint64_t>(GetParam());
  ScratchDir dir;
  std::string yaml = kJob;
  yaml.replace(yaml.find("DATA"), 4, "unused.mtb");
  mtps::testing::WriteFile(dir.File("job.yaml"), yaml);
  const JobSpec job = Job();
  ChildProcess server(BinPath("mtps-server"),
                      {"--standalone", "--config=" + dir.File("job.yaml"),
                       "--threads=" + std::to_string(kShards), "--port=0", "--http_port=0",
                       "--host=127.0.0.1", "--port_file=" + dir.File("ports")},
                      dir.File("server.log"));
  int rpc_port = 0, http_port = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 20s;
       rpc_port == 0 && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(20ms)) {
    std::ifstream(dir.File("ports")) >> rpc_port >> http_port;
    ASSERT_TRUE(server.running()) << server.Log();
  }
  ASSERT_NE(rpc_port, 0) << server.Log();
  auto client = Client::Connect({"tcp://127.0.0.1:" + std::to_string(rpc_port)},
                                {.transport = {.job_id = LoadJobSpec(dir.File("job.yaml"))->hash},
                                 .timeout = 30000ms});
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr size_t kBatch = 8192;
  std::mt19937_64 rng(rows);
  std::vector<uint64_t> keys(kBatch);
  std::vector<float> out(kBatch * 64);
  // Warm-up: message buffers of the largest size, without creating rows.
  for (uint32_t t = 0; t < 4; ++t) {
    for (uint64_t& k : keys) k = rng();
    ASSERT_TRUE((*client)->Pull(t, keys, job.tables[t].dim, out.data(),
                                {.step = 1, .count_as_sighting = false}).ok());
  }
  for (uint32_t t = 0; t < 4; ++t) {
    const TableSpec& spec = job.tables[t];
    const uint64_t before = AnonymousResidentBytes(server.pid());
    for (uint64_t loaded = 0; loaded < rows; loaded += kBatch) {
      const size_t n = std::min<uint64_t>(kBatch, rows - loaded);
      for (size_t i = 0; i < n; ++i) keys[i] = rng();
      ASSERT_TRUE((*client)->Pull(t, std::span(keys.data(), n), spec.dim, out.data(),
                                  {.step = 2, .count_as_sighting = true}).ok());
    }
    const double grown = double(AnonymousResidentBytes(server.pid()) - before);
    const double planned = double(ServerTableBytes(spec, double(rows), kShards) -
                                  ServerTableBytes(spec, 0, kShards));
    const double error = grown / planned - 1;
    std::printf("plan-vs-rss %s rows %llu planned %.0f measured %.0f error %+.2f%%\n",
                spec.name.c_str(), static_cast<unsigned long long>(rows), planned, grown,
                100 * error);
    EXPECT_NEAR(error, 0.0, 0.05) << spec.name << " with " << rows << " rows: planned "
                                  << planned << " bytes, RSS grew " << grown;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ServerMemoryTest, ::testing::Values(250000, 1000000));

}  // namespace
}  // namespace mtps::ps
