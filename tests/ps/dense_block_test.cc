// DenseBlockStore: async pushes apply RowOptimizer to the whole block; sync steps sum the
// workers' gradients in rank order and answer everyone only once applied; bad input.
#include "ps/dense_block.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace mtps::ps {
namespace {

OptimizerSpec Adam() {
  OptimizerSpec s;
  s.type = OptimizerSpec::Type::kAdam;
  s.lr = 0.01f;
  return s;
}

std::vector<float> Random(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

TEST(DenseBlockStoreTest, AsyncPushAppliesTheOptimizerToTheWholeBlock) {
  DenseBlockStore store(Adam());
  const auto init = Random(1000, 1);
  ASSERT_TRUE(store.Init(4, "tower.w", init.data(), init.size()).ok());
  // A second Init keeps the block (and its values).
  const auto other = Random(1000, 2);
  ASSERT_TRUE(store.Init(4, "tower.w", other.data(), other.size()).ok());

  RowOptimizer opt(Adam());
  std::vector<float> w = init, state(2000, 0.0f);
  for (int t = 1; t <= 3; ++t) {
    const auto g = Random(1000, 10 + t);
    ASSERT_TRUE(store.Push(4, g.data(), g.size()).ok());
    opt.Apply(w.data(), state.data(), g.data(), 1000, t);
  }
  std::vector<float> got(1000);
  ASSERT_TRUE(store.Pull(4, got.data(), got.size()).ok());
  EXPECT_EQ(got, w);
  auto snap = store.Snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].update_count, 3u);
  EXPECT_EQ(snap[0].state, state);
  EXPECT_EQ(snap[0].name, "tower.w");
}

// training.dense_sync_every: a push of k summed steps is applied as k optimizer steps of
// the mean, which keeps the learning rate's meaning per step.
TEST(DenseBlockStoreTest, APushOfKSummedStepsIsKStepsOfTheirMean) {
  DenseBlockStore store(Adam());
  const auto init = Random(500, 3);
  ASSERT_TRUE(store.Init(2, "expert.w", init.data(), init.size()).ok());
  RowOptimizer opt(Adam());
  std::vector<float> w = init, state(1000, 0.0f);
  const auto sum = Random(500, 4);
  ASSERT_TRUE(store.Push(2, sum.data(), sum.size(), /*steps=*/4).ok());
  std::vector<float> mean(500);
  for (size_t i = 0; i < mean.size(); ++i) mean[i] = sum[i] * 0.25f;
  for (int t = 1; t <= 4; ++t) opt.Apply(w.data(), state.data(), mean.data(), 500, t);
  std::vector<float> got(500);
  ASSERT_TRUE(store.Pull(2, got.data(), got.size()).ok());
  EXPECT_EQ(got, w);
  EXPECT_EQ(store.Snapshot()[0].update_count, 4u);  // a cut counts steps, not pushes
  Status refused = store.Push(2, sum.data(), sum.size(), kMaxDenseSyncEvery + 1);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused;
  ASSERT_TRUE(store.Pull(2, got.data(), got.size()).ok());
  EXPECT_EQ(got, w);
}

TEST(DenseBlockStoreTest, BadInputIsRefusedWithTheValuesAndChangesNothing) {
  DenseBlockStore store(Adam());
  std::vector<float> v(10, 1.0f);
  ASSERT_TRUE(store.Init(1, "b", v.data(), v.size()).ok());
  EXPECT_EQ(store.Push(9, v.data(), 10).code(), StatusCode::kNotFound);
  Status s = store.Push(1, v.data(), 7);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("has 10 values, the request has 7"), std::string::npos) << s;
  const std::vector<float> longer(11, 1.0f);  // (11 values from `v` would read past it)
  EXPECT_FALSE(store.Init(1, "b", longer.data(), longer.size()).ok());
  v[6] = std::numeric_limits<float>::infinity();
  s = store.Push(1, v.data(), 10);
  EXPECT_NE(s.message().find("element 6"), std::string::npos) << s;
  std::vector<float> got(10);
  ASSERT_TRUE(store.Pull(1, got.data(), 10).ok());
  EXPECT_EQ(got, std::vector<float>(10, 1.0f));
}

TEST(DenseBlockStoreTest, SyncStepFromFourThreadsEqualsTheRankOrderSumAppliedOnce) {
  constexpr int kWorkers = 4, kSteps = 10, kN = 513;
  DenseBlockStore store(Adam());
  const auto init = Random(kN, 3);
  ASSERT_TRUE(store.Init(0, "w", init.data(), kN).ok());

  std::atomic<int> early_answers{0};
  std::vector<std::thread> threads;
  std::atomic<int> arrived[kSteps] = {};
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      for (int step = 0; step < kSteps; ++step) {
        const auto g = Random(kN, 100 * step + w);
        std::this_thread::sleep_for(std::chrono::microseconds(((w * 5 + step) % 4) * 300));
        std::promise<Status> answer;
        ++arrived[step];
        store.PushSync(0, g.data(), kN, step, w, kWorkers,
                       [&](Status s) {
                         // Nobody hears back before every worker's gradient is in.
                         if (arrived[step].load() != kWorkers) ++early_answers;
                         answer.set_value(s);
                       });
        EXPECT_TRUE(answer.get_future().get().ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(early_answers.load(), 0);

  RowOptimizer opt(Adam());
  std::vector<float> w = init, state(2 * kN, 0.0f);
  for (int step = 0; step < kSteps; ++step) {
    std::vector<float> sum = Random(kN, 100 * step);
    for (int r = 1; r < kWorkers; ++r) {
      const auto g = Random(kN, 100 * step + r);
      for (int i = 0; i < kN; ++i) sum[i] += g[i];
    }
    opt.Apply(w.data(), state.data(), sum.data(), kN, step + 1);
  }
  std::vector<float> got(kN);
  ASSERT_TRUE(store.Pull(0, got.data(), kN).ok());
  EXPECT_EQ(got, w);
}

TEST(DenseBlockStoreTest, SyncMisuseAndCancellation) {
  DenseBlockStore store(Adam());
  std::vector<float> v(4, 0.5f);
  ASSERT_TRUE(store.Init(2, "b", v.data(), 4).ok());
  Status bad_rank;
  store.PushSync(2, v.data(), 4, 0, 2, 2, [&](Status s) { bad_rank = s; });
  EXPECT_EQ(bad_rank.code(), StatusCode::kInvalidArgument);
  Status waiting = Status::OK();
  bool called = false;
  store.PushSync(2, v.data(), 4, 7, 0, 2, [&](Status s) { waiting = s; called = true; });
  EXPECT_FALSE(called);
  Status dup;
  store.PushSync(2, v.data(), 4, 7, 0, 2, [&](Status s) { dup = s; });
  EXPECT_NE(dup.message().find("second sync push"), std::string::npos) << dup;
  store.CancelPendingSyncSteps(Unavailable("worker 1 is gone"));
  EXPECT_TRUE(called);
  EXPECT_EQ(waiting.code(), StatusCode::kUnavailable);
  std::vector<float> got(4);
  ASSERT_TRUE(store.Pull(2, got.data(), 4).ok());
  EXPECT_EQ(got, v);  // nothing applied
}

// A replacement server: worker 1 resends step 7 (answered by the lost server), worker 0
// has gone on to step 8. Step 7 is answered with nothing applied; step 8 is applied once.
TEST(DenseBlockStoreTest, ASyncStepAWorkerHasGonePastIsAnsweredWithNothingApplied) {
  DenseBlockStore store(Adam());
  std::vector<float> v(4, 0.5f), g(4, 1.0f);
  ASSERT_TRUE(store.Init(2, "b", v.data(), 4).ok());
  std::optional<Status> resent, next0, next1;
  store.PushSync(2, g.data(), 4, 7, 1, 2, [&](Status s) { resent = s; });
  EXPECT_FALSE(resent.has_value());
  store.PushSync(2, g.data(), 4, 8, 0, 2, [&](Status s) { next0 = s; });
  ASSERT_TRUE(resent.has_value());
  EXPECT_TRUE(resent->ok()) << *resent;
  EXPECT_FALSE(next0.has_value());
  std::vector<float> got(4);
  ASSERT_TRUE(store.Pull(2, got.data(), 4).ok());
  EXPECT_EQ(got, v) << "step 7 applied nothing here";
  store.PushSync(2, g.data(), 4, 8, 1, 2, [&](Status s) { next1 = s; });
  ASSERT_TRUE(next0.has_value() && next1.has_value());
  EXPECT_TRUE(next0->ok() && next1->ok());
  ASSERT_TRUE(store.Pull(2, got.data(), 4).ok());
  EXPECT_NE(got, v) << "step 8 was applied";
  ASSERT_EQ(store.Snapshot().size(), 1u);
  EXPECT_EQ(store.Snapshot()[0].update_count, 1u);
}

}  // namespace
}  // namespace mtps::ps
