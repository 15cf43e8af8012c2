// A small model learns a planted two-task problem: labels drawn from hidden per-user and
// per-item effects; plain SGD on the dense parameters and the embedding rows must drive
// the loss down and rank held-out clicks within 0.01 AUC of the true probabilities
// (the oracle), for every model type.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "models/cpu_backend.h"
#include "models/metrics.h"
#include "models/multitask_model.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

constexpr int kUsers = 30, kItems = 40, kDim = 4, kBatch = 64;

struct PlantedData {
  std::vector<double> user_effect, item_effect;
  std::mt19937_64 rng{123};

  PlantedData() {
    std::normal_distribution<double> n(0.0, 1.0);
    for (int u = 0; u < kUsers; ++u) user_effect.push_back(1.5 * n(rng));
    for (int i = 0; i < kItems; ++i) item_effect.push_back(1.5 * n(rng));
  }

  // Fills ids and labels of one batch: click ~ Bernoulli(sigmoid(a_u + b_i)), purchase
  // = click and Bernoulli(sigmoid(b_i - 1)) (a funnel, as ESMM expects).
  // `truth`, when given, receives the true click probabilities.
  void Draw(std::vector<int32_t>* users, std::vector<int32_t>* items, std::vector<float>* labels,
            std::vector<float>* truth = nullptr) {
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    users->clear();
    items->clear();
    labels->clear();
    if (truth != nullptr) truth->clear();
    for (int b = 0; b < kBatch; ++b) {
      int u = static_cast<int>(rng() % kUsers), i = static_cast<int>(rng() % kItems);
      users->push_back(u);
      items->push_back(i);
      const double p_click = 1 / (1 + std::exp(-(user_effect[u] + item_effect[i])));
      if (truth != nullptr) truth->push_back(static_cast<float>(p_click));
      bool click = uni(rng) < p_click;
      bool buy = click && uni(rng) < 1 / (1 + std::exp(-(item_effect[i] - 1)));
      labels->push_back(click);
      labels->push_back(buy);
    }
  }
};

class ModelTrainingTest : public ::testing::TestWithParam<ModelSpec::Type> {};

TEST_P(ModelTrainingTest, LossFallsOnAPlantedProblem) {
  JobSpec spec;
  spec.tables = {{.name = "user", .dim = kDim}, {.name = "item", .dim = kDim}};
  spec.sparse_fields = {{.name = "user", .table = "user"}, {.name = "item", .table = "item"}};
  spec.model.type = GetParam();
  spec.model.bottom_units = {16};
  spec.model.experts = 3;
  spec.model.expert_units = {16};
  spec.model.tower_units = {8};
  spec.model.ple_levels = 1;
  spec.model.ple_shared_experts = 1;
  spec.model.ple_task_experts = 1;
  spec.tasks = {{.name = "ctr", .label = "click"}, {.name = "ctcvr", .label = "buy"}};
  spec.training.batch_size = kBatch;
  spec.training.eval_batch_size = kBatch;
  auto created = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_TRUE(created.ok()) << created.status();
  auto& model = *created;

  // The whole tables act as the pulled rows: row index = id.
  std::mt19937_64 init(9);
  std::normal_distribution<float> n(0.0f, 0.1f);
  std::vector<float> user_table(kUsers * kDim), item_table(kItems * kDim);
  for (float& v : user_table) v = n(init);
  for (float& v : item_table) v = n(init);
  PlantedData data;
  std::vector<int32_t> users, items, offsets(kBatch + 1);
  for (int b = 0; b <= kBatch; ++b) offsets[b] = b;
  std::vector<float> labels;
  ModelInput in;
  in.batch_size = kBatch;
  in.fields = {{offsets.data(), nullptr}, {offsets.data(), nullptr}};
  in.tables = {{user_table.data(), kUsers}, {item_table.data(), kItems}};

  DenseParameters<float>& params = model->parameters();
  ModelOutput out;
  auto mean_loss = [&](int batches) {
    double sum = 0;
    for (int i = 0; i < batches; ++i) {
      data.Draw(&users, &items, &labels);
      in.fields[0].rows = users.data();
      in.fields[1].rows = items.data();
      in.labels = labels.data();
      EXPECT_TRUE(model->Evaluate(in, &out).ok());
      sum += out.task_loss[0] + out.task_loss[1];
    }
    return sum / batches;
  };
  const double before = mean_loss(20);
  constexpr float kLr = 0.3f;
  for (int step = 0; step < 600; ++step) {
    data.Draw(&users, &items, &labels);
    in.fields[0].rows = users.data();
    in.fields[1].rows = items.data();
    in.labels = labels.data();
    ASSERT_TRUE(model->Train(in, step, &out).ok());
    float* w = params.values();
    const float* g = params.grads();
    for (size_t i = 0; i < params.size(); ++i) w[i] -= kLr * g[i];
    for (size_t i = 0; i < user_table.size(); ++i) user_table[i] -= kLr * 10 * out.row_grads[0][i];
    for (size_t i = 0; i < item_table.size(); ++i) item_table[i] -= kLr * 10 * out.row_grads[1][i];
  }
  const double after = mean_loss(20);
  EXPECT_LT(after, before - 0.1) << "before " << before << " after " << after;

  // Held-out clicks are ranked nearly as well as the true probabilities rank them.
  std::vector<float> truth, predicted, oracle, clicks;
  for (int i = 0; i < 40; ++i) {
    data.Draw(&users, &items, &labels, &truth);
    in.fields[0].rows = users.data();
    in.fields[1].rows = items.data();
    in.labels = labels.data();
    ASSERT_TRUE(model->Evaluate(in, &out).ok());
    for (int b = 0; b < kBatch; ++b) {
      predicted.push_back(out.predictions[0][b]);
      oracle.push_back(truth[b]);
      clicks.push_back(labels[2 * b]);
      if (GetParam() == ModelSpec::Type::kEsmm) {
        // pCTCVR = pCTR * pCVR can never exceed pCTR.
        EXPECT_LE(out.predictions[1][b], out.predictions[0][b]);
      }
    }
  }
  const double model_auc = *ExactAuc(predicted, clicks), oracle_auc = *ExactAuc(oracle, clicks);
  EXPECT_GT(model_auc, oracle_auc - 0.01) << "oracle " << oracle_auc;
  EXPECT_GT(oracle_auc, 0.75);  // the planted signal is strong
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelTrainingTest, ::mtps::models::testing::AllModelTypes(),
                         ::mtps::models::testing::ModelTypeParamName);

}  // namespace
}  // namespace mtps::models
