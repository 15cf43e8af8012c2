// Finite-difference checks, in double precision, of every model's gradients: every dense
// block (experts, gates, towers, task heads, uncertainty log-variances) and the embedding
// row gradients, for each model type, loss mix and task weighting.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>

#include "models/cpu_backend.h"
#include "models/multitask_model.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

using testing::RandomBatch;
using testing::SmallSpec;
using Type = ModelSpec::Type;
constexpr TaskSpec::Loss kBce = TaskSpec::Loss::kBce, kMse = TaskSpec::Loss::kMse;

struct GradCase {
  std::string name;
  ModelSpec::Type type;
  TaskSpec::Loss second_loss;
  bool uncertainty;
  float dropout;
  int tasks;
  // With a sequence encoder: SequenceSpecOf(type, *encoder, interaction).
  std::optional<SequenceSpec::Encoder> encoder = std::nullopt;
  InteractionSpec interaction = {};
  int side_dim = 0;  // > 0: WithCategorySide(spec, side_dim)
};

using Kind = InteractionSpec::Kind;
using Encoder = SequenceSpec::Encoder;

class ModelGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGradientTest, GradientsMatchCentralDifferences) {
  const GradCase& c = GetParam();
  JobSpec spec = c.encoder.has_value()
                     ? testing::SequenceSpecOf(c.type, *c.encoder, c.interaction, c.second_loss)
                     : SmallSpec(c.type, c.second_loss, c.tasks);
  if (!c.encoder.has_value()) spec.model.interaction = c.interaction;
  if (c.side_dim > 0) spec = testing::WithCategorySide(spec, c.side_dim);
  spec.model.dropout = c.dropout;
  if (c.uncertainty) spec.training.task_weighting = TrainingSpec::TaskWeighting::kUncertainty;
  auto created = MultiTaskModel<double>::Create(spec, MakeCpuBackend<double>(1));
  ASSERT_TRUE(created.ok()) << created.status();
  auto& model = *created;
  DenseParameters<double>& params = model->parameters();

  std::vector<double> values(params.size());
  params.CopyValuesToHost(values.data());
  // Biases start at 0, which puts units fed an all-zero row exactly on a ReLU kink where
  // central differences are one-sided; move them off it (upwards, so no unit dies).
  std::mt19937_64 noise_rng(5);
  std::uniform_real_distribution<double> lift(0.05, 0.2);
  for (const DenseBlock& b : params.blocks()) {
    if (b.name.ends_with("/b")) {
      for (size_t i = 0; i < b.size; ++i) values[b.offset + i] += lift(noise_rng);
    }
  }
  params.CopyValuesFromHost(values.data());
  if (c.uncertainty) {
    // Away from zero so exp(-s) differs per task.
    const DenseBlock* lv = params.Find("task_weighting/log_variance");
    ASSERT_NE(lv, nullptr);
    for (size_t t = 0; t < lv->size; ++t) values[lv->offset + t] = 0.3 - 0.25 * t;
    params.CopyValuesFromHost(values.data());
  }

  RandomBatch<double> batch(spec, 8, /*seed=*/11);
  constexpr uint64_t kStep = 5;
  ModelOutputT<double> out;
  ASSERT_TRUE(model->Train(batch.input(), kStep, &out).ok());
  std::vector<double> grads(params.size());
  params.CopyGradsToHost(grads.data());

  auto objective = [&]() {
    ModelOutputT<double> o;
    Status s = model->TrainingLoss(batch.input(), kStep, &o);
    EXPECT_TRUE(s.ok()) << s;
    return o.objective;
  };
  EXPECT_NEAR(objective(), out.objective, 1e-12) << "TrainingLoss differs from Train's forward";

  constexpr double kEps = 1e-6;
  auto expect_close = [](double analytic, double numeric, const std::string& where) {
    EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric)) << where;
  };
  for (const DenseBlock& block : params.blocks()) {
    double max_abs = 0;
    for (size_t i = 0; i < block.size; ++i) {
      max_abs = std::max(max_abs, std::abs(grads[block.offset + i]));
    }
    // Every block takes part in the objective (dropout may silence a few units only).
    EXPECT_GT(max_abs, 0.0) << "no gradient reaches " << block.name;
    // Every value of every block: the models are small enough for that.
    for (size_t i = 0; i < block.size; ++i) {
      const size_t k = block.offset + i;
      const double saved = values[k];
      values[k] = saved + kEps;
      params.CopyValuesFromHost(values.data());
      const double up = objective();
      values[k] = saved - kEps;
      params.CopyValuesFromHost(values.data());
      const double down = objective();
      values[k] = saved;
      params.CopyValuesFromHost(values.data());
      expect_close(grads[k], (up - down) / (2 * kEps), block.name + "[" + std::to_string(i) + "]");
    }
  }
  ASSERT_EQ(out.row_grads.size(), batch.tables.size());
  for (size_t t = 0; t < batch.tables.size(); ++t) {
    ASSERT_EQ(out.row_grads[t].size(), batch.tables[t].size());
    for (size_t k = 0; k < batch.tables[t].size(); ++k) {
      const double saved = batch.tables[t][k];
      batch.tables[t][k] = saved + kEps;
      const double up = objective();
      batch.tables[t][k] = saved - kEps;
      const double down = objective();
      batch.tables[t][k] = saved;
      expect_close(out.row_grads[t][k], (up - down) / (2 * kEps),
                   spec.tables[t].name + " row value " + std::to_string(k));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, ModelGradientTest,
    ::testing::Values(
        GradCase{"SharedBottomBceMse", Type::kSharedBottom, kMse, false, 0.0f, 2},
        GradCase{"SharedBottomUncertaintyDropout", Type::kSharedBottom, kBce, true, 0.3f, 2},
        GradCase{"MmoeUncertaintyDropout", Type::kMmoe, kBce, true, 0.3f, 2},
        GradCase{"MmoeBceBce", Type::kMmoe, kBce, false, 0.0f, 2},
        GradCase{"MmoeMseUncertainty", Type::kMmoe, kMse, true, 0.0f, 2},
        GradCase{"MmoeThreeTasksDropout", Type::kMmoe, kMse, false, 0.25f, 3},
        GradCase{"PleBceMse", Type::kPle, kMse, false, 0.0f, 2},
        GradCase{"PleDropout", Type::kPle, kBce, false, 0.2f, 2},
        GradCase{"PleThreeTasksUncertainty", Type::kPle, kBce, true, 0.0f, 3},
        GradCase{"EsmmCtrCtcvr", Type::kEsmm, kBce, false, 0.0f, 2},
        GradCase{"EsmmUncertaintyExtraTask", Type::kEsmm, kBce, true, 0.0f, 3},
        // Interaction layers under each trunk, with and without a sequence encoder.
        GradCase{"SharedBottomDcnLowRank", Type::kSharedBottom, kMse, false, 0.0f, 2,
                 std::nullopt, {.kind = Kind::kDcn, .cross_layers = 2, .low_rank = 2}},
        GradCase{"PleDcnFullRank", Type::kPle, kBce, false, 0.0f, 2, std::nullopt,
                 {.kind = Kind::kDcn, .cross_layers = 2}},
        GradCase{"MmoeDinDot", Type::kMmoe, kBce, false, 0.2f, 2, Encoder::kDin,
                 {.kind = Kind::kDot}},
        GradCase{"EsmmDinFm", Type::kEsmm, kBce, false, 0.0f, 2, Encoder::kDin,
                 {.kind = Kind::kFm}},
        GradCase{"MmoeBst", Type::kMmoe, kMse, true, 0.0f, 2, Encoder::kBst},
        GradCase{"SharedBottomBstDcn", Type::kSharedBottom, kBce, false, 0.0f, 2, Encoder::kBst,
                 {.kind = Kind::kDcn, .cross_layers = 1}},
        GradCase{"PleSequenceMean", Type::kPle, kBce, false, 0.0f, 2, Encoder::kMean},
        // DIN's goods + category sequences: the history's categories beside its items.
        GradCase{"MmoeDinDotCategorySide", Type::kMmoe, kBce, false, 0.0f, 2, Encoder::kDin,
                 {.kind = Kind::kDot}, 4},
        GradCase{"EsmmBstCategorySide", Type::kEsmm, kBce, false, 0.0f, 2, Encoder::kBst, {}, 2},
        GradCase{"SharedBottomSumCategorySide", Type::kSharedBottom, kBce, false, 0.0f, 2,
                 Encoder::kSum, {}, 2}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

}  // namespace
}  // namespace mtps::models
