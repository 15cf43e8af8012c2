// Early stopping and the best epoch: BestEpoch's rule (patience, min_delta, the task or the
// mean, unmeasurable metrics), LocalParameterStore's snapshot, and LocalTrainer keeping and
// reporting its best epoch's model.
#include "worker/best_epoch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "worker/local_parameter_store.h"
#include "worker/local_trainer.h"

namespace mtps {
namespace {

namespace fs = std::filesystem;

JobSpec TwoTaskSpec(const std::string& early_stopping) {
  StatusOr<JobSpec> spec = ParseJobSpec(
      "features:\n  sparse: [{name: user, table: user}]\n"
      "tables: [{name: user, dim: 4}]\nmodel: {type: mmoe}\n"
      "tasks: [{name: ctr, label: click}, {name: cvr, label: buy}, {name: rating, label: r, loss: mse}]\n"
      "training: {epochs: 20" + early_stopping + "}\n");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : JobSpec{};
}

EvalResult Eval(double ctr, double cvr) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {.samples = 10, .tasks = {{.name = "ctr", .auc = ctr}, {.name = "cvr", .auc = cvr}, {.name = "rating", .auc = nan}}};
}

TEST(BestEpochTest, StopsAfterPatienceEpochsWithoutAGainAboveMinDelta) {
  BestEpoch best(TwoTaskSpec(", early_stopping: {patience: 2, min_delta: 0.001}"));
  EXPECT_EQ(best.MetricName(), "mean auc");
  // mean AUC per epoch: 0.70, 0.75, 0.7505 (best, but within min_delta), 0.74, then stop.
  const std::vector<std::pair<double, double>> aucs = {{0.70, 0.70}, {0.75, 0.75}, {0.7505, 0.7505}, {0.74, 0.74}};
  std::vector<BestEpoch::Verdict> v;
  for (size_t e = 0; e < aucs.size(); ++e) v.push_back(best.Observe(static_cast<int>(e), Eval(aucs[e].first, aucs[e].second)));
  EXPECT_TRUE(v[0].improved);
  EXPECT_TRUE(v[1].improved);
  EXPECT_TRUE(v[2].improved);   // the best model so far...
  EXPECT_FALSE(v[2].stop);      // ...but no gain above min_delta: one epoch of patience used
  EXPECT_FALSE(v[3].improved);
  EXPECT_TRUE(v[3].stop);
  EXPECT_EQ(best.best_epoch(), 2);
  EXPECT_DOUBLE_EQ(best.best_metric(), 0.7505);
  EXPECT_DOUBLE_EQ(best.best().tasks[0].auc, 0.7505);
  EXPECT_TRUE(best.stopped_early());
}

TEST(BestEpochTest, ATasksOwnAucAndUnmeasurableMetrics) {
  BestEpoch best(TwoTaskSpec(", early_stopping: {task: cvr, patience: 1}"));
  EXPECT_EQ(best.MetricName(), "auc of cvr");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  BestEpoch::Verdict first = best.Observe(0, Eval(0.9, nan));  // cvr not measurable
  EXPECT_FALSE(first.improved);
  EXPECT_TRUE(first.stop);  // a patience of one: an epoch without a measurable gain ends it
  EXPECT_EQ(best.best_epoch(), -1);

  BestEpoch by_cvr(TwoTaskSpec(", early_stopping: {task: cvr, patience: 1}"));
  EXPECT_TRUE(by_cvr.Observe(0, Eval(0.9, 0.6)).improved);
  EXPECT_TRUE(by_cvr.Observe(1, Eval(0.5, 0.7)).improved);  // ctr fell: only cvr counts
  EXPECT_EQ(by_cvr.best_epoch(), 1);
}

TEST(BestEpochTest, WithoutEarlyStoppingTheBestEpochIsStillKnownAndNothingStops) {
  BestEpoch best(TwoTaskSpec(""));
  for (int e = 0; e < 10; ++e) EXPECT_FALSE(best.Observe(e, Eval(0.8 - 0.01 * e, 0.8)).stop);
  EXPECT_EQ(best.best_epoch(), 0);
  EXPECT_FALSE(best.stopped_early());
}

TEST(LocalParameterStoreTest, ASnapshotRestoresRowsAndDenseBlocksExactly) {
  JobSpec spec = TwoTaskSpec("");
  LocalParameterStore store(spec);
  ASSERT_TRUE(store.status().ok());
  const std::vector<uint64_t> keys = {1, 2, 3};
  const std::vector<float> grads(12, 0.5f), dense_init = {1, 2, 3}, dense_grad = {1, 1, 1};
  ASSERT_TRUE(store.InitDense(std::vector<DenseBlockIn>{{0, "b", dense_init}}).ok());
  ASSERT_TRUE(store.PushRows(0, keys, 4, grads.data(), {}).get().ok());
  auto pull = [&](std::vector<float>* rows, std::vector<float>* dense) {
    rows->assign(12, 0);
    dense->assign(3, 0);
    ASSERT_TRUE(store.PullRows(0, keys, 4, rows->data(), {}).get().ok());
    ASSERT_TRUE(store.PullDense(std::vector<DenseBlockOut>{{0, *dense}}).get().ok());
  };
  std::vector<float> rows_before, dense_before, rows_after, dense_after;
  pull(&rows_before, &dense_before);
  StatusOr<std::unique_ptr<LocalParameterStore::Snapshot>> snapshot = store.TakeSnapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_TRUE(store.PushRows(0, keys, 4, grads.data(), {}).get().ok());
  ASSERT_TRUE(store.PushDense(std::vector<DenseBlockIn>{{0, "b", dense_grad}}, {}).get().ok());
  pull(&rows_after, &dense_after);
  EXPECT_NE(rows_after, rows_before);
  EXPECT_NE(dense_after, dense_before);
  ASSERT_TRUE(store.Restore(std::move(*snapshot)).ok());
  pull(&rows_after, &dense_after);
  EXPECT_EQ(rows_after, rows_before);
  EXPECT_EQ(dense_after, dense_before);
  // The restored state trains on exactly as the original did (optimizer state included).
  ASSERT_TRUE(store.PushRows(0, keys, 4, grads.data(), {}).get().ok());
  EXPECT_FALSE(store.Restore(nullptr).ok());
}

// A small click world: P(click) = sigmoid(u + i - 1); few training rows and a high
// learning rate, so the model overfits after an epoch or two.
void WriteClicks(const fs::path& dir, int train_rows, int eval_rows) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> u(400), it(300);
  for (double& x : u) x = normal(rng);
  for (double& x : it) x = normal(rng);
  for (const char* split : {"train", "eval"}) {
    std::ofstream out(dir / (std::string(split) + ".csv"));
    out << "click,user,item\n";
    const int rows = std::string(split) == "train" ? train_rows : eval_rows;
    for (int r = 0; r < rows; ++r) {
      const int a = std::uniform_int_distribution<int>(0, 399)(rng);
      const int b = std::uniform_int_distribution<int>(0, 299)(rng);
      const double p = 1.0 / (1.0 + std::exp(-(u[a] + it[b] - 1.0)));
      out << std::bernoulli_distribution(p)(rng) << ",u" << a << ",i" << b << "\n";
    }
  }
}

TEST(LocalTrainerEarlyStoppingTest, KeepsAndReportsTheBestEpochsModel) {
  const fs::path dir = fs::path(::testing::TempDir()) / "early_stopping_local";
  fs::remove_all(dir);
  fs::create_directories(dir);
  WriteClicks(dir, 3000, 3000);
  StatusOr<JobSpec> spec = ParseJobSpec(
      "data: {format: csv, train: " + (dir / "train.csv").string() + ", eval: " + (dir / "eval.csv").string() + "}\n"
      "features:\n  sparse: [{name: user, table: user}, {name: item, table: item}]\n"
      "tables:\n  - {name: user, dim: 8, optimizer: {type: adagrad, lr: 0.5}}\n"
      "  - {name: item, dim: 8, optimizer: {type: adagrad, lr: 0.5}}\n"
      "model: {type: shared_bottom, bottom_units: [32], tower_units: [8]}\n"
      "tasks: [{name: ctr, label: click}]\n"
      "training: {batch_size: 64, epochs: 12, dense_optimizer: {type: adam, lr: 0.01},\n"
      "           early_stopping: {patience: 2}}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto local = LocalTrainer::Create(*spec, {});
  ASSERT_TRUE(local.ok()) << local.status();
  std::vector<double> auc;
  StatusOr<EvalResult> result = (*local)->Run([&](int, const EvalResult& e) { auc.push_back(e.tasks[0].auc); });
  ASSERT_TRUE(result.ok()) << result.status();
  const BestEpoch& best = (*local)->best_epoch();
  ASSERT_GE(best.best_epoch(), 0);
  // The best epoch is the argmax, the run stopped `patience` epochs after the last gain,
  // and the result is that epoch's evaluation.
  const int argmax = static_cast<int>(std::max_element(auc.begin(), auc.end()) - auc.begin());
  EXPECT_EQ(best.best_epoch(), argmax);
  EXPECT_EQ(result->tasks[0].auc, auc[argmax]);
  EXPECT_TRUE(best.stopped_early()) << "12 epochs of 3000 rows at lr 0.5 should overfit";
  EXPECT_EQ((*local)->epochs_run(), static_cast<int>(auc.size()));
  EXPECT_LT((*local)->epochs_run(), 12);
  EXPECT_LT(argmax, (*local)->epochs_run() - 1) << "the last epoch was not the best: a restore happened";
  // The store holds the best epoch's model: evaluating again gives its metrics exactly.
  StatusOr<EvalResult> again = (*local)->Evaluate();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->tasks[0].auc, auc[argmax]);
  EXPECT_EQ(again->tasks[0].logloss, result->tasks[0].logloss);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mtps
