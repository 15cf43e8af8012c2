// Finite-difference checks, in double precision, of the interaction layers: DLRM pairwise
// dots, the FM term, and DCN-v2's cross network (full-rank and low-rank). Each layer's
// output is reduced by a fixed random projection, so its gradient is that projection.
#include <gtest/gtest.h>

#include <vector>

#include "models/interaction.h"
#include "tests/models/gradient_check.h"

namespace mtps::models {
namespace {

using testing::Dot;
using testing::ExpectGradient;
using testing::RandomVector;

class InteractionGradientTest : public testing::GradientTest {
 protected:
  static constexpr int kBatch = 4, kFields = 3, kDim = 2, kIn = kFields * kDim + 1;

  // Checks dx (accumulated into a buffer that starts at 0.5) and the layer's weights.
  void CheckLayer(Interaction<double>& layer) {
    std::vector<double> x = RandomVector(kBatch * kIn, rng_);
    MatrixView<double> xv{x.data(), kBatch, kIn, kIn};
    std::vector<double> r = RandomVector(kBatch * layer.out_cols(), rng_);
    auto f = [&] {
      layer.Forward(xv);
      return Dot(layer.out(kBatch).data, r, r.size());
    };
    f();
    std::copy(r.begin(), r.end(), layer.out_grad(kBatch).data);
    std::vector<double> dx(x.size(), 0.5);
    MatrixView<double> dxv{dx.data(), kBatch, kIn, kIn};
    layer.Backward(xv, &dxv);
    for (double& v : dx) v -= 0.5;
    ExpectGradient(&x, dx, f, "dx");
    ExpectParamGradients(f);
  }
};

TEST_F(InteractionGradientTest, PairwiseDotsAppendedToX) {
  auto layer = MakeInteraction<double>(backend_.get(), &params_, {.kind = InteractionSpec::Kind::kDot},
                                       kIn, kFields, kDim, kBatch);
  FinalizeParams();
  ASSERT_EQ(layer->out_cols(), kIn + 3);
  std::vector<double> x = RandomVector(kBatch * kIn, rng_);
  layer->Forward({x.data(), kBatch, kIn, kIn});
  MatrixView<double> o = layer->out(kBatch);
  // X passes through; then <f0,f1>, <f0,f2>, <f1,f2>.
  const double* x1 = x.data() + kIn;
  EXPECT_EQ(o.data[o.ld + kIn - 1], x1[kIn - 1]);
  EXPECT_NEAR(o.data[o.ld + kIn + 1], x1[0] * x1[4] + x1[1] * x1[5], 1e-15);
  CheckLayer(*layer);
}

TEST_F(InteractionGradientTest, FactorizationMachineTerm) {
  auto layer = MakeInteraction<double>(backend_.get(), &params_, {.kind = InteractionSpec::Kind::kFm},
                                       kIn, kFields, kDim, kBatch);
  FinalizeParams();
  ASSERT_EQ(layer->out_cols(), kIn + kDim);
  std::vector<double> x = RandomVector(kBatch * kIn, rng_);
  layer->Forward({x.data(), kBatch, kIn, kIn});
  // Column c of the term is the sum of the pairwise products of the fields' column c.
  const double* x0 = x.data();
  const double pairs = x0[0] * x0[2] + x0[0] * x0[4] + x0[2] * x0[4];
  EXPECT_NEAR(layer->out(kBatch).data[kIn], pairs, 1e-14);
  CheckLayer(*layer);
}

TEST_F(InteractionGradientTest, FullRankCrossNetwork) {
  auto layer = MakeInteraction<double>(
      backend_.get(), &params_, {.kind = InteractionSpec::Kind::kDcn, .cross_layers = 3}, kIn,
      kFields, kDim, kBatch);
  FinalizeParams();
  EXPECT_EQ(layer->out_cols(), kIn);
  EXPECT_EQ(params_.blocks().size(), 6u);  // w and b per layer
  CheckLayer(*layer);
}

TEST_F(InteractionGradientTest, LowRankCrossNetwork) {
  auto layer = MakeInteraction<double>(
      backend_.get(), &params_,
      {.kind = InteractionSpec::Kind::kDcn, .cross_layers = 2, .low_rank = 2}, kIn, kFields, kDim,
      kBatch);
  FinalizeParams();
  const DenseBlock* u = params_.Find("dcn/cross1/u/w");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->size, static_cast<size_t>(2 * kIn));
  CheckLayer(*layer);
}

}  // namespace
}  // namespace mtps::models
