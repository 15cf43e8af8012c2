// training.dense_sync_every: async workers sum k steps of dense gradients and push the sum
// once (exactly the per-step gradients' sum), flush it at a checkpoint cut and at the end
// of an epoch, pull every k steps; sync training keeps every step (and pushes every table,
// keys or none); the spec is checked.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "worker/local_parameter_store.h"
#include "worker/trainer.h"

namespace mtps {
namespace {

// Records every dense push (its step and values, blocks concatenated) on its way to an
// in-process store.
class RecordingStore : public ParameterStore {
 public:
  struct DensePush {
    uint64_t step;
    std::vector<float> values;
  };
  explicit RecordingStore(const JobSpec& spec) : inner_(spec) {}
  std::future<Status> PullRows(uint32_t t, std::span<const uint64_t> k, int d, float* out,
                               const PullOptions& o) override {
    return inner_.PullRows(t, k, d, out, o);
  }
  std::future<Status> PushRows(uint32_t t, std::span<const uint64_t> k, int d, const float* g,
                               const PushOptions& o) override {
    row_pushes.push_back({o.step, k.size(), o.sync});
    return inner_.PushRows(t, k, d, g, o);
  }
  Status InitDense(std::span<const DenseBlockIn> blocks) override { return inner_.InitDense(blocks); }
  std::future<Status> PullDense(std::span<const DenseBlockOut> blocks) override {
    ++dense_pulls;
    return inner_.PullDense(blocks);
  }
  std::future<Status> PushDense(std::span<const DenseBlockIn> g, const PushOptions& o) override {
    DensePush push{o.step, {}};
    for (const DenseBlockIn& block : g) {
      push.values.insert(push.values.end(), block.values.begin(), block.values.end());
    }
    pushes.push_back(std::move(push));
    return inner_.PushDense(g, o);
  }
  struct RowPush {
    uint64_t step;
    size_t keys;
    bool sync;
  };
  int dense_pulls = 0;
  std::vector<DensePush> pushes;
  std::vector<RowPush> row_pushes;

 private:
  LocalParameterStore inner_;
};

// Two small batches in turn, `count` in all, so that the gradients differ step to step.
// `second_has_no_keys`: the second batch's sparse field is empty in both its rows.
class AlternatingSource : public BatchSource {
 public:
  explicit AlternatingSource(int count, bool second_has_no_keys = false) : left_(count) {
    for (int b = 0; b < 2; ++b) {
      Batch& batch = batches_[b];
      batch.size = 2;
      batch.num_tasks = 1;
      batch.num_dense = 2;
      batch.labels = {b == 0 ? 1.0f : 0.0f, b == 0 ? 0.0f : 1.0f};
      batch.dense = {0.5f, -1.0f, b == 0 ? 2.0f : -0.5f, 1.5f};
      batch.fields.resize(1);
      const uint64_t k0 = 11 + 2 * b, k1 = 12 + 2 * b;
      batch.fields[0] = {{0, 1, 2}, {k0, k1}, {0, 1}};
      batch.tables.resize(1);
      batch.tables[0].unique_keys = {k0, k1};
    }
    if (second_has_no_keys) {
      batches_[1].fields[0] = {{0, 0, 0}, {}, {}};
      batches_[1].tables[0].unique_keys.clear();
    }
  }
  StatusOr<Batch*> Next() override { return left_-- > 0 ? &batches_[next_++ % 2] : nullptr; }
  void Release(Batch*) override {}

 private:
  int left_;
  int next_ = 0;
  Batch batches_[2];
};

// sgd on the dense blocks: k steps' updates applied at once equal the k updates one by one
// (up to rounding), so a run that sums gradients sees the same parameters as one that
// pushes every step and pulls at the same cadence.
std::string Spec(const std::string& training) {
  return "data: {format: mtb, train: [unused.mtb]}\n"
         "features:\n  sparse:\n    - {name: f, table: t}\n  dense: [a, b]\n"
         "tables:\n  - {name: t, dim: 4, optimizer: {type: sgd, lr: 0.1}}\n"
         "model: {type: shared_bottom, bottom_units: [8], tower_units: [4]}\n"
         "tasks:\n  - {name: ctr, label: click}\n"
         "training: {dense_optimizer: {type: sgd, lr: 0.5}, " + training + "}\n";
}
// Async with one batch prefetched and room for k = 4.
std::string Async(const std::string& more) { return "prefetch: 1, max_staleness: 4, " + more; }

struct TrainedRun {
  std::vector<RecordingStore::DensePush> pushes;
  std::vector<RecordingStore::RowPush> row_pushes;
  int dense_pulls = 0;
  uint64_t sync_every = 0;
  TrafficCounters traffic;
};

// Trains `steps` steps with prefetch 1; `quiesce_at` > 0 cuts a checkpoint there.
TrainedRun Train(const std::string& training, int steps, uint64_t quiesce_at = 0,
          TrainerOptions options = {.prefetch = 1, .max_staleness = 4},
          bool second_has_no_keys = false) {
  StatusOr<JobSpec> spec = ParseJobSpec(Spec(training));
  EXPECT_TRUE(spec.ok()) << spec.status();
  RecordingStore store(*spec);
  auto trainer = Trainer::Create(*spec, &store, options);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_TRUE((*trainer)->InitParameters().ok());
  store.dense_pulls = 0;
  AlternatingSource source(steps, second_has_no_keys);
  Status trained = (*trainer)->TrainEpoch(&source, [&](const StepReport& report) {
    if (report.step != quiesce_at) return;
    const size_t before = store.pushes.size();
    EXPECT_TRUE((*trainer)->Quiesce().ok());
    // The cut holds the partial sum: pushed before Quiesce returned.
    ASSERT_EQ(store.pushes.size(), before + 1);
    EXPECT_EQ(store.pushes.back().step, quiesce_at);
  });
  EXPECT_TRUE(trained.ok()) << trained;
  return {store.pushes, store.row_pushes, store.dense_pulls, (*trainer)->DenseSyncEvery(),
          (*trainer)->traffic()};
}

// The sum of per-step pushes [first, last] (steps are 1-based) of a run that pushes every step.
std::vector<float> SumOfSteps(const TrainedRun& every_step, uint64_t first, uint64_t last) {
  std::vector<float> sum(every_step.pushes[0].values.size(), 0.0f);
  for (uint64_t s = first; s <= last; ++s) {
    const RecordingStore::DensePush& push = every_step.pushes[s - 1];
    EXPECT_EQ(push.step, s);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += push.values[i];
  }
  return sum;
}

void ExpectSumsEqual(const std::vector<float>& actual, const std::vector<float>& expected,
                     const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double largest = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    largest = std::max(largest, std::fabs(static_cast<double>(expected[i])));
    ASSERT_NEAR(actual[i], expected[i], 1e-5 + 1e-4 * std::fabs(expected[i])) << what << " [" << i << "]";
  }
  EXPECT_GT(largest, 1e-3) << what << ": gradients too small to say anything";
}

TEST(DenseSyncTest, KStepsSummedEqualTheSumOfPerStepGradients) {
  // The same pull cadence (every 4 steps) with and without summing.
  const TrainedRun every_step = Train(Async("dense_pull_every: 4"), 12);
  ASSERT_EQ(every_step.pushes.size(), 12u);
  const TrainedRun summed = Train(Async("dense_sync_every: 4"), 12);
  EXPECT_EQ(summed.sync_every, 4u);
  EXPECT_EQ(every_step.dense_pulls, 3);
  EXPECT_EQ(summed.dense_pulls, 3);
  // Windows end where (step + prefetch) % 4 == 0: steps 3, 7, 11; the epoch's end pushes
  // step 12 alone.
  ASSERT_EQ(summed.pushes.size(), 4u);
  const uint64_t windows[][2] = {{1, 3}, {4, 7}, {8, 11}, {12, 12}};
  for (size_t w = 0; w < 4; ++w) {
    EXPECT_EQ(summed.pushes[w].step, windows[w][1]);
    ExpectSumsEqual(summed.pushes[w].values, SumOfSteps(every_step, windows[w][0], windows[w][1]),
                    "window ending at step " + std::to_string(windows[w][1]));
  }
}

TEST(DenseSyncTest, ACheckpointCutPushesThePartialSumFirst) {
  const TrainedRun every_step = Train(Async("dense_pull_every: 4"), 10);
  const TrainedRun summed = Train(Async("dense_sync_every: 4"), 10, /*quiesce_at=*/2);
  // The cut at step 2 pushes steps 1-2, the window then ends at 3 as planned; the end of
  // the epoch pushes 8-10.
  ASSERT_EQ(summed.pushes.size(), 4u);
  const uint64_t windows[][2] = {{1, 2}, {3, 3}, {4, 7}, {8, 10}};
  for (size_t w = 0; w < 4; ++w) {
    EXPECT_EQ(summed.pushes[w].step, windows[w][1]);
    ExpectSumsEqual(summed.pushes[w].values, SumOfSteps(every_step, windows[w][0], windows[w][1]),
                    "push at step " + std::to_string(windows[w][1]));
  }
}

TEST(DenseSyncTest, PayloadBytesFallByK) {
  const TrainedRun every_step = Train(Async(""), 12);
  const TrainedRun summed = Train(Async("dense_sync_every: 4"), 12);
  const uint64_t dense_bytes = every_step.pushes[0].values.size() * sizeof(float);
  EXPECT_EQ(every_step.traffic.dense_push_bytes, 12 * dense_bytes);
  EXPECT_EQ(summed.traffic.dense_push_bytes, 4 * dense_bytes);
  EXPECT_EQ(summed.traffic.dense_pushes, 4u);
  EXPECT_EQ(summed.traffic.dense_pulls, 3u);
  EXPECT_EQ(summed.traffic.dense_pull_bytes, 3 * dense_bytes);
  // The sparse traffic is the same: 2 keys x (8 + 4 x 4) bytes a step, each way.
  EXPECT_EQ(summed.traffic.sparse_pull_bytes, 12u * 2 * (8 + 16));
  EXPECT_EQ(summed.traffic.sparse_push_bytes, every_step.traffic.sparse_push_bytes);
}

TEST(DenseSyncTest, SynchronousTrainingPushesEveryStep) {
  // LocalTrainer and sync workers run the trainer synchronously: it never sums, whatever
  // the spec says (the spec refuses k > 1 with mode sync; LocalTrainer is the reference).
  const TrainedRun sync = Train(Async("dense_sync_every: 4"), 12, 0, {.sync = true});
  EXPECT_EQ(sync.sync_every, 1u);
  EXPECT_EQ(sync.pushes.size(), 12u);
  EXPECT_EQ(sync.dense_pulls, 12);
}

void ExpectRefused(const std::string& training, const std::string& says) {
  StatusOr<JobSpec> spec = ParseJobSpec(Spec(training));
  ASSERT_FALSE(spec.ok()) << training;
  EXPECT_NE(spec.status().message().find("training.dense_sync_every"), std::string::npos) << spec.status();
  EXPECT_NE(spec.status().message().find(says), std::string::npos) << spec.status();
}

TEST(DenseSyncTest, TheSpecRefusesWhatTheBoundsDoNotAllow) {
  EXPECT_TRUE(ParseJobSpec(Spec(Async("dense_sync_every: 4"))).ok());  // 1 + 4 - 1 <= 4
  ExpectRefused(Async("dense_sync_every: 0"), "must be in [1, 4096]");
  ExpectRefused(Async("dense_sync_every: -3"), "must be in [1, 4096]");
  ExpectRefused("dense_sync_every: 5000, max_staleness: 6000", "must be in [1, 4096]");
  ExpectRefused(Async("dense_sync_every: 5"), "raise max_staleness to at least 5");
  ExpectRefused("mode: sync, dense_sync_every: 4", "must be 1 in sync mode");
  ExpectRefused(Async("dense_sync_every: 4, dense_pull_every: 2"), "dense_pull_every must be 0 or 4");
  EXPECT_TRUE(ParseJobSpec(Spec(Async("dense_sync_every: 4, dense_pull_every: 4"))).ok());
  // The defaults (prefetch 2, max_staleness 4) leave room for k = 3.
  EXPECT_TRUE(ParseJobSpec(Spec("dense_sync_every: 3")).ok());
  ExpectRefused("dense_sync_every: 16", "raise max_staleness to at least 17");
  EXPECT_TRUE(ParseJobSpec(Spec("dense_sync_every: 16, max_staleness: 17")).ok());
}

// Every server's sync step waits for one push per worker: a batch whose table has no keys
// still pushes it (empty) in sync mode; async training skips it.
TEST(DenseSyncTest, ASyncStepPushesATableEvenWithNoKeys) {
  const TrainedRun sync = Train("", 4, 0, {.sync = true}, /*second_has_no_keys=*/true);
  ASSERT_EQ(sync.row_pushes.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sync.row_pushes[i].step, i + 1);
    EXPECT_EQ(sync.row_pushes[i].keys, i % 2 == 0 ? 2u : 0u) << "step " << i + 1;
    EXPECT_TRUE(sync.row_pushes[i].sync);
  }
  const TrainedRun async = Train(Async(""), 4, 0, {.prefetch = 1, .max_staleness = 4},
                                 /*second_has_no_keys=*/true);
  ASSERT_EQ(async.row_pushes.size(), 2u);
  EXPECT_EQ(async.row_pushes[0].step, 1u);
  EXPECT_EQ(async.row_pushes[1].step, 3u);
}

}  // namespace
}  // namespace mtps
