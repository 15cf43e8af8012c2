// ShardedTables: fan-out pulls and pushes, refusals before fan-out, and sync mode: pushes
// from 8 threads give exactly the state of a serial replay.
#include "ps/sharded_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

namespace mtps::ps {
namespace {

TableSpec MakeSpec(const std::string& name, int dim, OptimizerSpec::Type type) {
  TableSpec spec;
  spec.name = name;
  spec.dim = dim;
  spec.optimizer.type = type;
  spec.optimizer.lr = 0.05f;
  spec.optimizer.l2 = 0.001f;
  spec.seed = 123;
  return spec;
}

struct RowCopy {
  std::vector<float> values;
  RowMeta meta;
  bool operator==(const RowCopy&) const = default;
};

// Every row of table `id`, from all shards.
std::map<uint64_t, RowCopy> AllRows(ShardedTables& tables, uint32_t id) {
  std::map<uint64_t, RowCopy> rows;
  EXPECT_TRUE(tables
                  .ForEachShard(id,
                                [&](int, EmbeddingTable& t) {
                                  t.ForEachRow([&](uint64_t key, const float* v, const RowMeta& m) {
                                    rows[key] = {std::vector<float>(v, v + t.values_per_row()), m};
                                  });
                                })
                  .ok());
  return rows;
}

std::map<uint64_t, RowCopy> AllRows(const EmbeddingTable& t) {
  std::map<uint64_t, RowCopy> rows;
  t.ForEachRow([&](uint64_t key, const float* v, const RowMeta& m) {
    rows[key] = {std::vector<float>(v, v + t.values_per_row()), m};
  });
  return rows;
}

TEST(ShardedTablesTest, PullAndPushFanOutAndEqualOneTable) {
  const TableSpec spec = MakeSpec("user", 8, OptimizerSpec::Type::kAdagrad);
  auto tables = ShardedTables::Create({MakeSpec("other", 4, OptimizerSpec::Type::kSgd), spec}, 4);
  ASSERT_TRUE(tables.ok()) << tables.status();
  auto single = EmbeddingTable::Create(spec);
  ASSERT_TRUE(single.ok());

  std::mt19937_64 rng(9);
  for (int step = 0; step < 20; ++step) {
    std::vector<uint64_t> keys(500);
    for (auto& k : keys) k = rng() % 3000;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::shuffle(keys.begin(), keys.end(), rng);
    std::vector<float> got(keys.size() * 8), want(keys.size() * 8), grads(keys.size() * 8);
    ASSERT_TRUE((*tables)->Pull(1, keys.data(), keys.size(), got.data(), step, true).ok());
    (*single)->Pull(keys.data(), keys.size(), want.data(), step, true);
    ASSERT_EQ(got, want) << "step " << step;
    for (auto& g : grads) g = std::uniform_real_distribution<float>(-1, 1)(rng);
    auto r = (*tables)->Push(1, keys.data(), grads.data(), keys.size(), step);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->applied, keys.size());
    ASSERT_TRUE((*single)->Push(keys.data(), grads.data(), keys.size(), step).ok());
  }
  EXPECT_EQ(AllRows(**tables, 1), AllRows(**single));
  // Every shard holds some rows: the split is real.
  std::vector<size_t> per_shard;
  ASSERT_TRUE((*tables)->ForEachShard(1, [&](int, EmbeddingTable& t) { per_shard.push_back(t.rows()); }).ok());
  for (size_t n : per_shard) EXPECT_GT(n, 300u);
  auto counters = (*tables)->Counters(1);
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->rows, (*single)->rows());
  EXPECT_EQ(counters->admitted, (*single)->rows());
}

TEST(ShardedTablesTest, RefusesUnknownTablesAndNonFiniteGradientsBeforeFanOut) {
  auto tables = ShardedTables::Create({MakeSpec("t", 4, OptimizerSpec::Type::kSgd)}, 2);
  ASSERT_TRUE(tables.ok());
  std::vector<uint64_t> keys = {1, 2, 3};
  std::vector<float> values(12, 0.5f);
  Status s = (*tables)->Pull(7, keys.data(), 3, values.data(), 0, true);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("unknown table id 7"), std::string::npos) << s;
  EXPECT_EQ((*tables)->Push(7, keys.data(), values.data(), 3, 0).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE((*tables)->Push(0, keys.data(), values.data(), 3, 0).ok());
  const auto before = AllRows(**tables, 0);
  values[9] = std::numeric_limits<float>::quiet_NaN();  // key index 2
  auto r = (*tables)->Push(0, keys.data(), values.data(), 3, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("key index 2"), std::string::npos) << r.status();
  EXPECT_EQ(AllRows(**tables, 0), before);
  EXPECT_EQ((*tables)->Counters(0)->rejected_requests, 1u);
  auto sync = (*tables)->PushSync(0, keys.data(), values.data(), 3, 1, 0, 1);
  EXPECT_EQ(sync.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*tables)->Counters(0)->rejected_requests, 2u);
  // And it keeps serving.
  values[9] = 0.5f;
  EXPECT_TRUE((*tables)->Push(0, keys.data(), values.data(), 3, 1).ok());
}

TEST(ShardedTablesTest, EmptyRequestsCompleteAtOnce) {
  auto tables = ShardedTables::Create({MakeSpec("t", 4, OptimizerSpec::Type::kSgd)}, 3);
  ASSERT_TRUE(tables.ok());
  EXPECT_TRUE((*tables)->Pull(0, nullptr, 0, nullptr, 0, true).ok());
  auto r = (*tables)->Push(0, nullptr, nullptr, 0, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied, 0u);
}

// Worker w's keys and gradients at `step`: overlapping random subsets of a shared pool.
struct WorkerPush {
  std::vector<uint64_t> keys;
  std::vector<float> grads;
};
WorkerPush MakePush(int worker, int step, int dim) {
  std::mt19937_64 rng(1000 * step + worker);
  WorkerPush p;
  std::vector<uint64_t> pool(4000);
  std::iota(pool.begin(), pool.end(), 1ULL << 40);
  std::shuffle(pool.begin(), pool.end(), rng);
  p.keys.assign(pool.begin(), pool.begin() + 300 + worker * 20);
  p.grads.resize(p.keys.size() * dim);
  std::normal_distribution<float> normal;
  for (auto& g : p.grads) g = normal(rng);
  return p;
}

TEST(ShardedTablesTest, SyncPushesFromEightThreadsEqualASerialReplay) {
  constexpr int kWorkers = 8, kSteps = 12, kDim = 8;
  const TableSpec spec = MakeSpec("items", kDim, OptimizerSpec::Type::kAdam);
  auto tables = ShardedTables::Create({spec}, 4);
  ASSERT_TRUE(tables.ok());

  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      for (int step = 0; step < kSteps; ++step) {
        const WorkerPush p = MakePush(w, step, kDim);
        // Scramble arrival order: workers sleep different amounts before pushing.
        std::this_thread::sleep_for(std::chrono::microseconds(((w * 7 + step * 3) % 8) * 200));
        auto r = (*tables)->PushSync(0, p.keys.data(), p.grads.data(), p.keys.size(), step, w,
                                     kWorkers);
        if (!r.ok() || r->applied != p.keys.size()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  // Serial replay: per step, the sum over workers in rank order, then one push.
  auto replay = EmbeddingTable::Create(spec);
  ASSERT_TRUE(replay.ok());
  for (int step = 0; step < kSteps; ++step) {
    std::map<uint64_t, std::vector<float>> sum;
    std::vector<uint64_t> order;
    for (int w = 0; w < kWorkers; ++w) {
      const WorkerPush p = MakePush(w, step, kDim);
      for (size_t i = 0; i < p.keys.size(); ++i) {
        const float* g = p.grads.data() + i * kDim;
        auto [it, fresh] = sum.try_emplace(p.keys[i], g, g + kDim);
        if (fresh) {
          order.push_back(p.keys[i]);
        } else {
          for (int d = 0; d < kDim; ++d) it->second[d] += g[d];
        }
      }
    }
    std::vector<float> grads;
    for (uint64_t k : order) grads.insert(grads.end(), sum[k].begin(), sum[k].end());
    ASSERT_TRUE((*replay)->Push(order.data(), grads.data(), order.size(), step).ok());
  }
  const auto got = AllRows(**tables, 0);
  const auto want = AllRows(**replay);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "sync state differs from the serial replay";
}

TEST(ShardedTablesTest, SyncMisuseIsRefusedAndCancelAnswersWaiters) {
  auto tables = ShardedTables::Create({MakeSpec("t", 2, OptimizerSpec::Type::kSgd)}, 2);
  ASSERT_TRUE(tables.ok());
  std::vector<uint64_t> keys = {1, 2};
  std::vector<float> grads = {1, 1, 1, 1};
  EXPECT_EQ((*tables)->PushSync(0, keys.data(), grads.data(), 2, 0, 3, 2).status().code(),
            StatusCode::kInvalidArgument);
  std::promise<StatusOr<PushResult>> first;
  (*tables)->PushSyncAsync(0, keys.data(), grads.data(), 2, 5, 0, 2,
                           [&](StatusOr<PushResult> r) { first.set_value(std::move(r)); });
  auto dup = (*tables)->PushSync(0, keys.data(), grads.data(), 2, 5, 0, 2);
  EXPECT_NE(dup.status().message().find("second sync push"), std::string::npos) << dup.status();
  auto other_count = (*tables)->PushSync(0, keys.data(), grads.data(), 2, 5, 1, 3);
  EXPECT_NE(other_count.status().message().find("num_workers=3"), std::string::npos);
  // Nothing was applied while the step waits.
  EXPECT_EQ((*tables)->Counters(0)->rows, 0u);
  (*tables)->CancelPendingSyncSteps(Unavailable("worker 1 died"));
  auto r = first.get_future().get();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("worker 1 died"), std::string::npos);
  EXPECT_EQ((*tables)->Counters(0)->rows, 0u);
}

// On a server that replaced one which completed step 5 and died before worker 1 read
// its answer: worker 1's resent part is answered once worker 0 goes on to step 6, with
// nothing applied, and step 6 is applied as usual.
TEST(ShardedTablesTest, ASyncStepAWorkerHasGonePastIsAnsweredWithNothingApplied) {
  auto tables = ShardedTables::Create({MakeSpec("t", 2, OptimizerSpec::Type::kSgd)}, 2);
  ASSERT_TRUE(tables.ok());
  std::vector<uint64_t> keys = {1, 2};
  std::vector<float> grads = {1, 1, 1, 1};
  std::promise<StatusOr<PushResult>> resent;
  (*tables)->PushSyncAsync(0, keys.data(), grads.data(), 2, 5, 1, 2,
                           [&](StatusOr<PushResult> r) { resent.set_value(std::move(r)); });
  std::promise<StatusOr<PushResult>> next0;
  (*tables)->PushSyncAsync(0, keys.data(), grads.data(), 2, 6, 0, 2,
                           [&](StatusOr<PushResult> r) { next0.set_value(std::move(r)); });
  StatusOr<PushResult> r = resent.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->applied, 0u);
  EXPECT_EQ((*tables)->Counters(0)->rows, 0u) << "step 5 applied nothing here";
  auto next1 = (*tables)->PushSync(0, keys.data(), grads.data(), 2, 6, 1, 2);
  ASSERT_TRUE(next1.ok()) << next1.status();
  EXPECT_EQ(next1->applied, 2u);
  EXPECT_EQ(next0.get_future().get()->applied, 2u);
  EXPECT_EQ((*tables)->Counters(0)->rows, 2u);
}

TEST(ShardedTablesTest, AsyncCallbacksFromManyThreadsAllComplete) {
  auto tables = ShardedTables::Create({MakeSpec("t", 16, OptimizerSpec::Type::kAdagrad)}, 3);
  ASSERT_TRUE(tables.ok());
  constexpr int kThreads = 6, kRequests = 50;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> keys(256);
      std::iota(keys.begin(), keys.end(), t * 100000);
      std::vector<float> out(keys.size() * 16), grads(keys.size() * 16, 0.1f);
      for (int i = 0; i < kRequests; ++i) {
        if (!(*tables)->Pull(0, keys.data(), keys.size(), out.data(), i, true).ok()) return;
        auto r = (*tables)->Push(0, keys.data(), grads.data(), keys.size(), i);
        if (r.ok() && r->applied == keys.size()) ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), kThreads * kRequests);
  EXPECT_EQ((*tables)->Counters(0)->rows, size_t{kThreads} * 256);
}

}  // namespace
}  // namespace mtps::ps
