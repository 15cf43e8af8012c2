// LocalTrainer on a planted two-task problem whose true probabilities are known: it must
// come within 0.01 of the oracle AUC on both tasks, and it must refuse bad input.
#include "worker/local_trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "models/metrics.h"

namespace mtps {
namespace {

namespace fs = std::filesystem;

// Writes train.csv and eval.csv of a world with per-user and per-item effects and one
// dense feature: P(click) = sigmoid(-1.5 + u + i + 0.5 x), P(buy | click) =
// sigmoid(-1 + 0.8 u' - 0.6 i'), purchase = click and buy. Returns the true probabilities
// of the eval rows (ctr, ctcvr) so the test knows the best achievable AUC.
struct Planted {
  std::vector<float> p_ctr, p_ctcvr, click, purchase;
};

Planted WritePlantedData(const fs::path& dir, int train_rows, int eval_rows) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int users = 100, items = 60;
  std::vector<double> u(users), u2(users), it(items), it2(items);
  for (auto* v : {&u, &u2}) for (double& x : *v) x = normal(rng);
  for (auto* v : {&it, &it2}) for (double& x : *v) x = normal(rng);
  auto sigmoid = [](double z) { return 1.0 / (1.0 + std::exp(-z)); };

  Planted eval;
  for (const char* split : {"train", "eval"}) {
    const bool is_eval = std::string(split) == "eval";
    std::ofstream out(dir / (std::string(split) + ".csv"));
    out << "click,purchase,user,item,x\n";
    for (int r = 0; r < (is_eval ? eval_rows : train_rows); ++r) {
      const int user = std::uniform_int_distribution<int>(0, users - 1)(rng);
      const int item = std::uniform_int_distribution<int>(0, items - 1)(rng);
      const double x = normal(rng);
      const double p_click = sigmoid(-1.5 + u[user] + it[item] + 0.5 * x);
      const double p_buy = sigmoid(-1.0 + 0.8 * u2[user] - 0.6 * it2[item]);
      const bool click = std::bernoulli_distribution(p_click)(rng);
      const bool purchase = click && std::bernoulli_distribution(p_buy)(rng);
      out << click << "," << purchase << ",u" << user << ",i" << item << "," << x << "\n";
      if (is_eval) {
        eval.p_ctr.push_back(static_cast<float>(p_click));
        eval.p_ctcvr.push_back(static_cast<float>(p_click * p_buy));
        eval.click.push_back(click);
        eval.purchase.push_back(purchase);
      }
    }
  }
  return eval;
}

std::string PlantedSpec(const fs::path& dir, const std::string& model) {
  return "data:\n  format: csv\n  train: " + (dir / "train.csv").string() +
         "\n  eval: " + (dir / "eval.csv").string() +
         "\nfeatures:\n  sparse:\n    - {name: user, table: user}\n    - {name: item, table: item}\n"
         "  dense: [x]\n"
         "tables:\n  - {name: user, dim: 8, optimizer: {type: adagrad, lr: 0.1}}\n"
         "  - {name: item, dim: 8, optimizer: {type: adagrad, lr: 0.1}}\n"
         "model: {type: " + model + ", experts: 4, expert_units: [32], tower_units: [16],"
         " bottom_units: [32]}\n"
         "tasks:\n  - {name: ctr, label: click}\n  - {name: cvr, label: purchase}\n"
         "training: {batch_size: 256, epochs: 3, dense_optimizer: {type: adam, lr: 0.005}}\n";
}

class LocalTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("local_trainer_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LocalTrainerTest, ReachesTheOracleAucOnAPlantedProblem) {
  Planted truth = WritePlantedData(dir_, 60000, 20000);
  StatusOr<double> oracle_ctr = models::ExactAuc(truth.p_ctr, truth.click);
  StatusOr<double> oracle_cvr = models::ExactAuc(truth.p_ctcvr, truth.purchase);
  ASSERT_TRUE(oracle_ctr.ok() && oracle_cvr.ok());

  StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  StatusOr<std::unique_ptr<LocalTrainer>> local = LocalTrainer::Create(*spec, {});
  ASSERT_TRUE(local.ok()) << local.status();
  std::vector<double> ctr_by_epoch;
  StatusOr<EvalResult> eval = (*local)->Run(
      [&](int, const EvalResult& e) { ctr_by_epoch.push_back(e.tasks[0].auc); });
  ASSERT_TRUE(eval.ok()) << eval.status();
  ASSERT_EQ(eval->tasks.size(), 2u);
  EXPECT_EQ(eval->samples, 20000u);
  EXPECT_EQ((*local)->samples(), 3u * 60000u);
  // One entry per epoch for summary.json's history: its samples, time and mean training loss.
  const std::vector<LocalTrainer::EpochStats>& epochs = (*local)->epoch_stats();
  ASSERT_EQ(epochs.size(), 3u);
  for (const LocalTrainer::EpochStats& e : epochs) {
    EXPECT_EQ(e.samples, 60000u);
    EXPECT_GT(e.seconds, 0);
    ASSERT_EQ(e.train_loss.size(), 2u);
    EXPECT_TRUE(std::isfinite(e.train_loss[0]) && e.train_loss[0] > 0 && e.train_loss[1] > 0);
  }
  EXPECT_LT(epochs[2].train_loss[0], epochs[0].train_loss[0]) << "the ctr loss falls as it learns";
  EXPECT_GT(eval->tasks[0].auc, *oracle_ctr - 0.01) << "oracle " << *oracle_ctr;
  EXPECT_GT(eval->tasks[1].auc, *oracle_cvr - 0.01) << "oracle " << *oracle_cvr;
  // No model beats the true probabilities by more than the eval set's noise.
  EXPECT_LT(eval->tasks[0].auc, *oracle_ctr + 0.01);
  ASSERT_EQ(ctr_by_epoch.size(), 3u);
  EXPECT_GT(ctr_by_epoch.back(), 0.6);
}

TEST_F(LocalTrainerTest, EveryModelTypeTrainsAndBeatsChance) {
  WritePlantedData(dir_, 20000, 5000);
  for (const std::string model : {"shared_bottom", "ple", "esmm"}) {
    StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, model));
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec->training.epochs = 1;
    StatusOr<std::unique_ptr<LocalTrainer>> local = LocalTrainer::Create(*spec, {});
    ASSERT_TRUE(local.ok()) << model << ": " << local.status();
    StatusOr<EvalResult> eval = (*local)->Run();
    ASSERT_TRUE(eval.ok()) << model << ": " << eval.status();
    EXPECT_GT(eval->tasks[0].auc, 0.7) << model;
    EXPECT_GT(eval->tasks[1].auc, 0.65) << model;
  }
}

TEST_F(LocalTrainerTest, TheSameSeedGivesTheSameParameters) {
  WritePlantedData(dir_, 4000, 1000);
  StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
  ASSERT_TRUE(spec.ok());
  spec->training.epochs = 1;
  std::vector<float> dense[2];
  float user_row[2][8];
  for (int run = 0; run < 2; ++run) {
    auto local = LocalTrainer::Create(*spec, {});
    ASSERT_TRUE(local.ok());
    ASSERT_TRUE((*local)->TrainEpoch(0).ok());
    ASSERT_TRUE((*local)->trainer().PullDenseValues(&dense[run]).ok());
    const ps::EmbeddingTable* users = (*local)->store().table(0);
    ASSERT_NE(users, nullptr);
    EXPECT_GT(users->rows(), 50u);
    uint64_t some_key = 0;
    users->ForEachRow([&](uint64_t key, const float*, const ps::RowMeta&) { some_key = std::max(some_key, key); });
    ASSERT_TRUE(users->Lookup(some_key, user_row[run], nullptr, nullptr));
  }
  EXPECT_EQ(dense[0], dense[1]);
  for (int d = 0; d < 8; ++d) EXPECT_EQ(user_row[0][d], user_row[1][d]);
}

TEST_F(LocalTrainerTest, RefusesBadInputWithItsLocation) {
  WritePlantedData(dir_, 1000, 100);
  {
    std::ofstream out(dir_ / "train.csv", std::ios::app);
    out << "1,0,u1,i1,not-a-number\n";
  }
  StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
  ASSERT_TRUE(spec.ok());
  spec->training.epochs = 1;
  auto local = LocalTrainer::Create(*spec, {});
  ASSERT_TRUE(local.ok()) << local.status();
  Status status = (*local)->TrainEpoch(0);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("train.csv"), std::string::npos) << status;
  EXPECT_NE(status.message().find("1002"), std::string::npos) << "the line number: " << status;
}

TEST_F(LocalTrainerTest, SkippingEveryRecordFailsTheRunInsteadOfTrainingOnNothing) {
  WritePlantedData(dir_, 0, 10);
  {
    std::ofstream out(dir_ / "train.csv", std::ios::app);
    for (int r = 0; r < 50; ++r) out << "1,0,u1,i1,not-a-number\n";
  }
  StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
  ASSERT_TRUE(spec.ok());
  spec->data.on_bad_record = DataSpec::BadRecordPolicy::kSkip;
  auto local = LocalTrainer::Create(*spec, {});
  ASSERT_TRUE(local.ok()) << local.status();
  Status status = (*local)->TrainEpoch(0);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find("every record was bad"), std::string::npos) << status;
  EXPECT_NE(status.message().find("50 bad records of 50"), std::string::npos) << status;
  EXPECT_EQ((*local)->bad_records().bad_records, 50u);
}

TEST_F(LocalTrainerTest, SkippedRecordsOverTheSpecFractionFailTheRunAndUnderItAreCounted) {
  WritePlantedData(dir_, 100, 10);
  {
    std::ofstream out(dir_ / "train.csv", std::ios::app);
    for (int r = 0; r < 20; ++r) out << "1,0,u1,i1,not-a-number\n";
  }
  for (double limit : {0.1, 0.5}) {
    StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
    ASSERT_TRUE(spec.ok());
    spec->data.on_bad_record = DataSpec::BadRecordPolicy::kSkip;
    spec->data.max_bad_fraction = limit;
    auto local = LocalTrainer::Create(*spec, {});
    ASSERT_TRUE(local.ok()) << local.status();
    Status status = (*local)->TrainEpoch(0);
    // 20 bad of 120 read: 16.7%.
    if (limit < 0.167) {
      EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status;
      EXPECT_NE(status.message().find("max_bad_fraction"), std::string::npos) << status;
    } else {
      EXPECT_TRUE(status.ok()) << status;
    }
    EXPECT_EQ((*local)->bad_records().bad_records, 20u);
    EXPECT_EQ((*local)->bad_records().records, 100u);
  }
  std::string yaml = PlantedSpec(dir_, "mmoe");
  yaml.replace(yaml.find("  eval: "), 0, "  max_bad_fraction: 1.5\n");
  StatusOr<JobSpec> refused = ParseJobSpec(yaml);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("max_bad_fraction"), std::string::npos) << refused.status();
}

TEST_F(LocalTrainerTest, RefusesAnUnknownDevice) {
  WritePlantedData(dir_, 100, 10);
  StatusOr<JobSpec> spec = ParseJobSpec(PlantedSpec(dir_, "mmoe"));
  ASSERT_TRUE(spec.ok());
  auto local = LocalTrainer::Create(*spec, {.device = "tpu:0"});
  ASSERT_FALSE(local.ok());
  EXPECT_NE(local.status().message().find("tpu:0"), std::string::npos) << local.status();
}

}  // namespace
}  // namespace mtps
