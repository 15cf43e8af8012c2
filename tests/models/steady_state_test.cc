// Steady-state steps allocate no backend memory: every buffer is sized at Create() for
// the max batch (per-table buffers grow only while batches grow). A decorator backend
// counts the allocations each step makes.
#include <gtest/gtest.h>

#include "models/cpu_backend.h"
#include "models/multitask_model.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

using testing::RandomBatch;
using testing::SmallSpec;

// Forwards every call to the CPU backend, counting AllocateBytes calls. It claims not to
// be host memory, so the model takes the device path (staging copies, row gradients
// copied back) that a CUDA backend gets, and that path's buffers are counted too.
class CountingBackend final : public Backend<float> {
 public:
  explicit CountingBackend(int* allocations)
      : inner_(MakeCpuBackend<float>(1)), allocations_(allocations) {}

  std::string device() const override { return inner_->device(); }
  bool is_host() const override { return false; }
  void* AllocateBytes(size_t bytes) override {
    ++*allocations_;
    return inner_->AllocateBytes(bytes);
  }
  void FreeBytes(void* p) override { inner_->FreeBytes(p); }
  void CopyToDevice(const void* h, void* d, size_t n) override { inner_->CopyToDevice(h, d, n); }
  void CopyToHost(const void* d, void* h, size_t n) override { inner_->CopyToHost(d, h, n); }
  void Synchronize() override { inner_->Synchronize(); }
  void Fill(float* x, size_t n, float v) override { inner_->Fill(x, n, v); }
  void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override {
    inner_->Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  void BiasActivation(int r, int c, const float* b, Activation act, float* y, int ld) override {
    inner_->BiasActivation(r, c, b, act, y, ld);
  }
  void ReluBackward(int r, int c, const float* y, int ldy, float* dy, int lddy) override {
    inner_->ReluBackward(r, c, y, ldy, dy, lddy);
  }
  void ColumnSum(int r, int c, const float* x, int ld, float* out) override {
    inner_->ColumnSum(r, c, x, ld, out);
  }
  void CopyBlock(int r, int c, const float* s, int lds, float* d, int ldd, bool acc) override {
    inner_->CopyBlock(r, c, s, lds, d, ldd, acc);
  }
  void Dropout(int r, int c, float rate, uint64_t seed, float* x, int ld) override {
    inner_->Dropout(r, c, rate, seed, x, ld);
  }
  void RowSoftmax(int r, int c, float* x, int ld) override { inner_->RowSoftmax(r, c, x, ld); }
  void RowSoftmaxBackward(int r, int c, const float* y, int ldy, const float* dy, int lddy,
                          float* dx, int lddx) override {
    inner_->RowSoftmaxBackward(r, c, y, ldy, dy, lddy, dx, lddx);
  }
  void MixExperts(int r, int w, const ExpertRanges& e, const float* g, int ldg, const float* x,
                  int lde, float* o, int ldo) override {
    inner_->MixExperts(r, w, e, g, ldg, x, lde, o, ldo);
  }
  void MixExpertsBackward(int r, int w, const ExpertRanges& e, const float* g, int ldg,
                          const float* x, int lde, const float* d, int ldd, float* dg, int lddg,
                          float* dx, int lddx) override {
    inner_->MixExpertsBackward(r, w, e, g, ldg, x, lde, d, ldd, dg, lddg, dx, lddx);
  }
  void PoolForward(const PoolingArgs<float>& a) override { inner_->PoolForward(a); }
  void PoolBackward(const PoolingArgs<float>& a, float* g) override { inner_->PoolBackward(a, g); }
  void Multiply(int r, int c, const float* a, int lda, const float* b, int ldb, float* o, int ldo,
                bool acc) override {
    inner_->Multiply(r, c, a, lda, b, ldb, o, ldo, acc);
  }
  void LayerNorm(int r, int c, const float* x, int ldx, const float* g, const float* b, float* y,
                 int ldy, float* xhat, float* rstd) override {
    inner_->LayerNorm(r, c, x, ldx, g, b, y, ldy, xhat, rstd);
  }
  void LayerNormBackward(int r, int c, const float* xhat, const float* rstd, const float* g,
                         const float* dy, int lddy, float* dx, int lddx, float* dg,
                         float* db) override {
    inner_->LayerNormBackward(r, c, xhat, rstd, g, dy, lddy, dx, lddx, dg, db);
  }
  void PairwiseDot(int r, int f, int d, const float* x, int ldx, float* o, int ldo) override {
    inner_->PairwiseDot(r, f, d, x, ldx, o, ldo);
  }
  void PairwiseDotBackward(int r, int f, int d, const float* x, int ldx, const float* g,
                           int ldg, float* dx, int lddx) override {
    inner_->PairwiseDotBackward(r, f, d, x, ldx, g, ldg, dx, lddx);
  }
  void FmInteraction(int r, int f, int d, const float* x, int ldx, float* o, int ldo) override {
    inner_->FmInteraction(r, f, d, x, ldx, o, ldo);
  }
  void FmInteractionBackward(int r, int f, int d, const float* x, int ldx, const float* g,
                             int ldg, float* dx, int lddx) override {
    inner_->FmInteractionBackward(r, f, d, x, ldx, g, ldg, dx, lddx);
  }
  void GatherSequence(const SequenceShape& s, const int32_t* rows, const float* t,
                      float* o) override {
    inner_->GatherSequence(s, rows, t, o);
  }
  void ScatterSequence(const SequenceShape& s, const int32_t* rows, const float* d,
                       float* g) override {
    inner_->ScatterSequence(s, rows, d, g);
  }
  void AddPositions(const SequenceShape& s, const float* p, float* x) override {
    inner_->AddPositions(s, p, x);
  }
  void AddPositionsBackward(const SequenceShape& s, const float* dx, float* dp) override {
    inner_->AddPositionsBackward(s, dx, dp);
  }
  void AttentionFeatures(const SequenceShape& s, const float* x, const float* t, int ldt,
                         float* f) override {
    inner_->AttentionFeatures(s, x, t, ldt, f);
  }
  void AttentionFeaturesBackward(const SequenceShape& s, const float* x, const float* t, int ldt,
                                 const float* df, float* dx, float* dt, int lddt) override {
    inner_->AttentionFeaturesBackward(s, x, t, ldt, df, dx, dt, lddt);
  }
  void SequenceWeightedSum(const SequenceShape& s, const float* w, const float* x, float* o,
                           int ldo) override {
    inner_->SequenceWeightedSum(s, w, x, o, ldo);
  }
  void SequenceWeightedSumBackward(const SequenceShape& s, const float* w, const float* x,
                                   const float* d, int ldd, float* dw, float* dx) override {
    inner_->SequenceWeightedSumBackward(s, w, x, d, ldd, dw, dx);
  }
  void SequenceSoftmax(const SequenceShape& s, float* w) override {
    inner_->SequenceSoftmax(s, w);
  }
  void SequenceSoftmaxBackward(const SequenceShape& s, const float* w, float* dw) override {
    inner_->SequenceSoftmaxBackward(s, w, dw);
  }
  void SelfAttention(const AttentionArgs<float>& a) override { inner_->SelfAttention(a); }
  void SelfAttentionBackward(const AttentionArgs<float>& a, const float* d, float* dq) override {
    inner_->SelfAttentionBackward(a, d, dq);
  }
  void BceWithLogits(int n, const float* z, int ldz, const float* y, int ldy, float s, float* p,
                     float* dz, int lddz, float* l) override {
    inner_->BceWithLogits(n, z, ldz, y, ldy, s, p, dz, lddz, l);
  }
  void SquaredError(int n, const float* z, int ldz, const float* y, int ldy, float s, float* p,
                    float* dz, int lddz, float* l) override {
    inner_->SquaredError(n, z, ldz, y, ldy, s, p, dz, lddz, l);
  }
  void ProductBceWithLogits(int n, const float* za, const float* zb, int ldz, const float* y,
                            int ldy, float s, float* p, float* dza, float* dzb, int lddz,
                            float* l) override {
    inner_->ProductBceWithLogits(n, za, zb, ldz, y, ldy, s, p, dza, dzb, lddz, l);
  }

 private:
  std::unique_ptr<Backend<float>> inner_;
  int* allocations_;
};

class SteadyStateTest : public ::testing::TestWithParam<ModelSpec::Type> {};

// Steps of `spec` on a counting device-like backend allocate nothing after the first and
// compute what the host backend computes.
void ExpectSteadyState(JobSpec spec) {
  int allocations = 0;
  spec.model.dropout = 0.1f;
  auto model = MultiTaskModel<float>::Create(spec, std::make_unique<CountingBackend>(&allocations));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_GT(allocations, 0);
  RandomBatch<float> full(spec, 8, 1), smaller(spec, 5, 2);
  ModelOutput out;
  ASSERT_TRUE((*model)->Train(full.input(), 1, &out).ok());
  const int after_first = allocations;
  for (uint64_t step = 2; step < 6; ++step) {
    ASSERT_TRUE((*model)->Train((step % 2 ? smaller : full).input(), step, &out).ok());
    ASSERT_TRUE((*model)->Evaluate(full.input(), &out).ok());
  }
  EXPECT_EQ(allocations, after_first);
  // The device path computes what the host path computes.
  auto host = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ModelOutput host_out;
  ASSERT_TRUE((*host)->Train(full.input(), 9, &host_out).ok());
  ASSERT_TRUE((*model)->Train(full.input(), 9, &out).ok());
  EXPECT_EQ(out.task_loss, host_out.task_loss);
  EXPECT_EQ(out.row_grads, host_out.row_grads);
}

TEST_P(SteadyStateTest, TrainingStepsAllocateNothingAfterTheFirst) {
  ExpectSteadyState(SmallSpec(GetParam()));
}

// Sequence batches differ in their longest sequence from step to step: buffers are sized
// for max_length once, and the device path's row-gradient copy includes the items' rows.
TEST_P(SteadyStateTest, SequenceAndInteractionModelsAllocateNothingAfterTheFirst) {
  ExpectSteadyState(testing::SequenceSpecOf(GetParam(), SequenceSpec::Encoder::kBst,
                                            {.kind = InteractionSpec::Kind::kDcn}));
  ExpectSteadyState(testing::SequenceSpecOf(GetParam(), SequenceSpec::Encoder::kDin,
                                            {.kind = InteractionSpec::Kind::kDot}));
}

INSTANTIATE_TEST_SUITE_P(AllModels, SteadyStateTest, ::mtps::models::testing::AllModelTypes(),
                         ::mtps::models::testing::ModelTypeParamName);

}  // namespace
}  // namespace mtps::models
