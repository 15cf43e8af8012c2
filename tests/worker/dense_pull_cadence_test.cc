// How often a trainer pulls the dense blocks: every step in sync and exact modes, every
// dense_pull_every steps in async mode (by default the most that max_staleness allows),
// while every step still pushes its dense gradients.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "worker/local_parameter_store.h"
#include "worker/trainer.h"

namespace mtps {
namespace {

// Counts dense pulls and pushes on their way to an in-process store.
class CountingStore : public ParameterStore {
 public:
  explicit CountingStore(const JobSpec& spec) : inner_(spec) {}
  std::future<Status> PullRows(uint32_t t, std::span<const uint64_t> k, int d, float* out,
                               const PullOptions& o) override {
    return inner_.PullRows(t, k, d, out, o);
  }
  std::future<Status> PushRows(uint32_t t, std::span<const uint64_t> k, int d, const float* g,
                               const PushOptions& o) override {
    return inner_.PushRows(t, k, d, g, o);
  }
  Status InitDense(std::span<const DenseBlockIn> blocks) override { return inner_.InitDense(blocks); }
  std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) override {
    ++dense_pulls;
    return inner_.PullDense(blocks);
  }
  std::future<Status> PushDense(std::span<const DenseBlockIn> g, const PushOptions& o) override {
    ++dense_pushes;
    return inner_.PushDense(g, o);
  }
  std::atomic<int> dense_pulls{0}, dense_pushes{0};

 private:
  LocalParameterStore inner_;
};

// The same small batch, `count` times.
class RepeatSource : public BatchSource {
 public:
  explicit RepeatSource(int count) : left_(count) {
    batch_.size = 2;
    batch_.num_tasks = 1;
    batch_.labels = {1, 0};
    batch_.fields.resize(1);
    batch_.fields[0] = {{0, 1, 2}, {11, 12}, {0, 1}};
    batch_.tables.resize(1);
    batch_.tables[0].unique_keys = {11, 12};
  }
  StatusOr<Batch*> Next() override { return left_-- > 0 ? &batch_ : nullptr; }
  void Release(Batch*) override {}

 private:
  int left_;
  Batch batch_;
};

std::string Spec(const std::string& training) {
  return "data: {format: mtb, train: [unused.mtb]}\n"
         "features:\n  sparse:\n    - {name: f, table: t}\n"
         "tables:\n  - {name: t, dim: 4, optimizer: {type: sgd, lr: 0.1}}\n"
         "model: {type: shared_bottom, bottom_units: [8], tower_units: [4]}\n"
         "tasks:\n  - {name: ctr, label: click}\n"
         "training: {" + training + "}\n";
}

// Dense pulls during 12 training steps (InitParameters' own pull not counted).
int DensePullsIn12Steps(const std::string& training, const TrainerOptions& options,
                        uint64_t* every) {
  StatusOr<JobSpec> spec = ParseJobSpec(Spec(training));
  EXPECT_TRUE(spec.ok()) << spec.status();
  CountingStore store(*spec);
  auto trainer = Trainer::Create(*spec, &store, options);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_TRUE((*trainer)->InitParameters().ok());
  const int before = store.dense_pulls.load();
  RepeatSource source(12);
  Status trained = (*trainer)->TrainEpoch(&source, nullptr);
  EXPECT_TRUE(trained.ok()) << trained;
  EXPECT_EQ(store.dense_pushes.load(), 12) << "every step pushes its dense gradients";
  *every = (*trainer)->DensePullEvery();
  return store.dense_pulls.load() - before;
}

TEST(DensePullCadenceTest, AsyncPullsEveryKStepsAndSyncEveryStep) {
  uint64_t every = 0;
  // Async, prefetch 2, max_staleness 4: by default k = 4 - 2 + 1 = 3.
  EXPECT_EQ(DensePullsIn12Steps("prefetch: 2, max_staleness: 4",
                                {.prefetch = 2, .max_staleness = 4}, &every), 4);
  EXPECT_EQ(every, 3u);
  // Chosen in the spec.
  EXPECT_EQ(DensePullsIn12Steps("dense_pull_every: 6", {.prefetch = 2, .max_staleness = 4},
                                &every), 2);
  EXPECT_EQ(every, 6u);
  // A staleness bound that leaves no room: every step.
  EXPECT_EQ(DensePullsIn12Steps("", {.prefetch = 2, .max_staleness = 1}, &every), 12);
  // Sync training and the exact mode always pull.
  EXPECT_EQ(DensePullsIn12Steps("dense_pull_every: 6", {.sync = true}, &every), 12);
  EXPECT_EQ(every, 1u);
  EXPECT_EQ(DensePullsIn12Steps("dense_pull_every: 6", {.prefetch = 0, .max_staleness = 4},
                                &every), 12);
}

TEST(DensePullCadenceTest, ANegativeCadenceIsRefusedWithItsPath) {
  StatusOr<JobSpec> spec = ParseJobSpec(Spec("dense_pull_every: -2"));
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("training.dense_pull_every"), std::string::npos)
      << spec.status();
}

}  // namespace
}  // namespace mtps
