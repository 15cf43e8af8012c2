// The CUDA backend computes what the CPU backend computes: same model, same seed, same
// random batch (dropout on) -> losses, predictions, dense and row gradients agree to
// float rounding, for every trunk and with the interaction layers and sequence encoders.
// Skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>

#include "models/backend.h"
#include "models/cpu_backend.h"
#include "models/multitask_model.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

using testing::RandomBatch;
using testing::SmallSpec;

void ExpectClose(const std::vector<float>& cpu, const std::vector<float>& gpu,
                 const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size()) << what;
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_NEAR(cpu[i], gpu[i], 2e-5 + 1e-3 * std::abs(cpu[i])) << what << "[" << i << "]";
  }
}

// Trains `spec` for two steps on both backends and compares everything they return.
void ExpectAgreement(JobSpec spec) {
  spec.model.dropout = 0.2f;
  spec.training.task_weighting = TrainingSpec::TaskWeighting::kUncertainty;
  spec.training.batch_size = 300;  // more than one CUDA block of rows
  auto cuda_backend = MakeBackend<float>("cuda:0");
  ASSERT_TRUE(cuda_backend.ok()) << cuda_backend.status();
  auto cpu = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  auto gpu = MultiTaskModel<float>::Create(spec, std::move(*cuda_backend));
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  RandomBatch<float> batch(spec, 300, 77, /*rows_per_table=*/40);
  for (uint64_t step : {1, 2}) {
    ModelOutput a, b;
    ASSERT_TRUE((*cpu)->Train(batch.input(), step, &a).ok());
    ASSERT_TRUE((*gpu)->Train(batch.input(), step, &b).ok());
    for (size_t t = 0; t < a.task_loss.size(); ++t) {
      EXPECT_NEAR(a.task_loss[t], b.task_loss[t], 1e-5 + 1e-4 * std::abs(a.task_loss[t]));
      ExpectClose(a.predictions[t], b.predictions[t], "predictions " + std::to_string(t));
    }
    for (size_t t = 0; t < a.row_grads.size(); ++t) {
      ExpectClose(a.row_grads[t], b.row_grads[t], "row grads " + std::to_string(t));
    }
    DenseParameters<float>& pa = (*cpu)->parameters();
    std::vector<float> ga(pa.size()), gb(pa.size());
    pa.CopyGradsToHost(ga.data());
    (*gpu)->parameters().CopyGradsToHost(gb.data());
    ExpectClose(ga, gb, "dense grads");
  }
}

class CudaAgreementTest : public ::testing::TestWithParam<ModelSpec::Type> {};

TEST_P(CudaAgreementTest, CpuAndCudaAgree) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  ExpectAgreement(SmallSpec(GetParam(), GetParam() == ModelSpec::Type::kEsmm
                                            ? TaskSpec::Loss::kBce
                                            : TaskSpec::Loss::kMse));
}

// The interaction layers and sequence encoders on every trunk: their kernels (pairwise
// dots, FM, cross products, layer norm, masked attention, scatter of item rows, side
// sequences) agree too.
struct SequenceCase {
  std::string name;
  ModelSpec::Type type;
  SequenceSpec::Encoder encoder;
  InteractionSpec interaction;
  int side_dim = 0;  // > 0: the history's categories beside its items (WithCategorySide)
};

class CudaSequenceAgreementTest : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(CudaSequenceAgreementTest, CpuAndCudaAgree) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  const SequenceCase& c = GetParam();
  JobSpec spec = testing::SequenceSpecOf(c.type, c.encoder, c.interaction);
  if (c.side_dim > 0) spec = testing::WithCategorySide(spec, c.side_dim);
  ExpectAgreement(spec);
}

using Kind = InteractionSpec::Kind;
using Encoder = SequenceSpec::Encoder;
INSTANTIATE_TEST_SUITE_P(
    Sequences, CudaSequenceAgreementTest,
    ::testing::Values(
        SequenceCase{"MmoeDinDot", ModelSpec::Type::kMmoe, Encoder::kDin, {.kind = Kind::kDot}},
        SequenceCase{"MmoeBstDcnLowRank", ModelSpec::Type::kMmoe, Encoder::kBst,
                     {.kind = Kind::kDcn, .cross_layers = 2, .low_rank = 3}},
        SequenceCase{"PleBstFm", ModelSpec::Type::kPle, Encoder::kBst, {.kind = Kind::kFm}},
        SequenceCase{"EsmmDinDcn", ModelSpec::Type::kEsmm, Encoder::kDin,
                     {.kind = Kind::kDcn, .cross_layers = 1}},
        SequenceCase{"SharedBottomMean", ModelSpec::Type::kSharedBottom, Encoder::kMean, {}},
        // Side sequences: the concatenation's copies and the per-part gathers and scatters.
        SequenceCase{"MmoeDinDotCategorySide", ModelSpec::Type::kMmoe, Encoder::kDin,
                     {.kind = Kind::kDot}, 4},
        SequenceCase{"PleBstCategorySide", ModelSpec::Type::kPle, Encoder::kBst, {}, 2}),
    [](const ::testing::TestParamInfo<SequenceCase>& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(AllModels, CudaAgreementTest, ::mtps::models::testing::AllModelTypes(),
                         ::mtps::models::testing::ModelTypeParamName);

}  // namespace
}  // namespace mtps::models
