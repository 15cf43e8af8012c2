// Finite-difference checks, in double precision, of each layer on its own: Linear
// (plain and grouped), Mlp with dropout, the softmax Gate, embedding-bag pooling (sum,
// mean, duplicates, empty bags) and the three task heads. Each layer's output is reduced
// by a fixed random projection, so its gradient is exactly that projection.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "models/cpu_backend.h"
#include "models/gate.h"
#include "models/input_layer.h"
#include "models/kernel_math.h"
#include "models/linear.h"
#include "models/mlp.h"
#include "tests/models/gradient_check.h"

namespace mtps::models {
namespace {

using testing::Dot;
using testing::ExpectGradient;
using testing::RandomVector;
using LayerGradientTest = testing::GradientTest;

TEST_F(LayerGradientTest, GroupedLinearWithRelu) {
  constexpr int kBatch = 5, kIn = 3, kOut = 4, kGroups = 2;
  Linear<double> fc(&params_, "fc", kIn, kOut, kGroups, Activation::kRelu);
  FinalizeParams();
  std::vector<double> x = RandomVector(kBatch * kIn * kGroups, rng_);
  std::vector<double> y(kBatch * kOut * kGroups), r = RandomVector(y.size(), rng_);
  MatrixView<double> xv{x.data(), kBatch, kIn * kGroups, kIn * kGroups};
  MatrixView<double> yv{y.data(), kBatch, kOut * kGroups, kOut * kGroups};
  auto f = [&] {
    fc.Forward(*backend_, xv, yv);
    return Dot(y.data(), r, y.size());
  };
  f();
  std::vector<double> dy = r, dx(x.size(), 0.5);  // dx is accumulated into: starts at 0.5
  MatrixView<double> dyv{dy.data(), kBatch, kOut * kGroups, kOut * kGroups};
  MatrixView<double> dxv{dx.data(), kBatch, kIn * kGroups, kIn * kGroups};
  fc.Backward(*backend_, xv, yv, dyv, &dxv, 1.0);
  for (double& v : dx) v -= 0.5;
  ExpectGradient(&x, dx, f, "dx");
  ExpectParamGradients(f);
}

TEST_F(LayerGradientTest, MlpWithDropoutIsDeterministicPerSeed) {
  constexpr int kBatch = 6, kIn = 4;
  Mlp<double> mlp(backend_.get(), &params_, "mlp",
                  {.in = kIn, .units = {5, 3}, .groups = 2, .relu_last = true, .dropout = 0.3f},
                  kBatch);
  FinalizeParams();
  std::vector<double> x = RandomVector(kBatch * kIn, rng_);
  MatrixView<double> xv{x.data(), kBatch, kIn, kIn};
  std::vector<double> r = RandomVector(kBatch * mlp.out_cols(), rng_);
  auto f = [&] {
    mlp.Forward(xv, true, /*step_seed=*/99);
    return Dot(mlp.out(kBatch).data, r, r.size());
  };
  const double first = f();
  EXPECT_EQ(first, f()) << "same seed, same mask";
  mlp.Forward(xv, true, 100);
  EXPECT_NE(first, Dot(mlp.out(kBatch).data, r, r.size())) << "another seed, another mask";
  f();
  std::copy(r.begin(), r.end(), mlp.out_grad(kBatch).data);
  std::vector<double> dx(x.size(), 0.0);
  MatrixView<double> dxv{dx.data(), kBatch, kIn, kIn};
  mlp.Backward(xv, &dxv);
  ExpectGradient(&x, dx, f, "dx");
  ExpectParamGradients(f);
}

TEST_F(LayerGradientTest, SoftmaxGateOverTwoExpertRanges) {
  constexpr int kBatch = 4, kIn = 3, kWidth = 2, kExperts = 5;
  // Mixes experts {3, 4} and {0}: ranges as a PLE task gate uses them.
  Gate<double> gate(backend_.get(), &params_, "gate", kIn, ExpertRanges{3, 2, 0, 1}, kWidth,
                    kBatch);
  FinalizeParams();
  std::vector<double> x = RandomVector(kBatch * kIn, rng_);
  std::vector<double> e = RandomVector(kBatch * kExperts * kWidth, rng_);
  MatrixView<double> xv{x.data(), kBatch, kIn, kIn};
  MatrixView<double> ev{e.data(), kBatch, kExperts * kWidth, kExperts * kWidth};
  std::vector<double> r = RandomVector(kBatch * kWidth, rng_);
  auto f = [&] {
    gate.Forward(xv, ev);
    return Dot(gate.out(kBatch).data, r, r.size());
  };
  f();
  // The weights are a distribution per row.
  for (int b = 0; b < kBatch; ++b) {
    double sum = 0;
    for (int j = 0; j < 3; ++j) sum += gate.weights(kBatch).data[b * 3 + j];
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
  std::copy(r.begin(), r.end(), gate.out_grad(kBatch).data);
  std::vector<double> dx(x.size(), 0.0), de(e.size(), 0.0);
  MatrixView<double> dxv{dx.data(), kBatch, kIn, kIn};
  MatrixView<double> dev{de.data(), kBatch, kExperts * kWidth, kExperts * kWidth};
  gate.Backward(xv, ev, dev, &dxv);
  ExpectGradient(&x, dx, f, "dx");
  ExpectGradient(&e, de, f, "dexperts");
  for (int b = 0; b < kBatch; ++b) {
    for (int c = 1 * kWidth; c < 3 * kWidth; ++c) EXPECT_EQ(de[b * kExperts * kWidth + c], 0.0);
  }
  ExpectParamGradients(f);
}

TEST_F(LayerGradientTest, EmbeddingBagSumAndMeanScatterAddOverDuplicates) {
  InputLayout layout;
  layout.tables = {{"t", 3}};
  layout.fields = {{"sum_field", 0, false}, {"mean_field", 0, true}};
  layout.dense = {"d"};
  layout.tasks = {"task"};
  constexpr int kBatch = 3;
  InputLayer<double> input(backend_.get(), layout, kBatch);
  std::vector<double> table = RandomVector(4 * 3, rng_);
  // Record 1 of the mean field is empty; row 2 appears twice in one bag.
  std::vector<int32_t> sum_off{0, 1, 3, 4}, sum_rows{0, 2, 2, 3};
  std::vector<int32_t> mean_off{0, 2, 2, 5}, mean_rows{1, 2, 0, 0, 3};
  std::vector<double> dense{0.1, 0.2, 0.3};
  ModelInputT<double> in;
  in.batch_size = kBatch;
  in.dense = dense.data();
  in.fields = {{sum_off.data(), sum_rows.data()}, {mean_off.data(), mean_rows.data()}};
  in.tables = {{table.data(), 4}};
  std::vector<double> r = RandomVector(kBatch * layout.width(), rng_);
  auto f = [&] {
    EXPECT_TRUE(input.Load(in).ok());
    input.Forward();
    return Dot(input.x().data, r, r.size());
  };
  f();
  // The dense column is copied through.
  for (int b = 0; b < kBatch; ++b) EXPECT_EQ(input.x().data[b * 7 + 6], dense[b]);
  std::copy(r.begin(), r.end(), input.dx().data);
  ModelOutputT<double> out;
  input.Backward(&out);
  ASSERT_EQ(out.row_grads.size(), 1u);
  ExpectGradient(&table, out.row_grads[0], f, "row grads");
}

TEST_F(LayerGradientTest, TaskHeadsMatchTheirLosses) {
  constexpr int kN = 7;
  std::vector<double> za = RandomVector(kN, rng_, 3.0), zb = RandomVector(kN, rng_, 3.0);
  za[0] = 40;  // far in the tails: still finite and exact
  zb[1] = -40;
  std::vector<double> y = {1, 0, 1, 0, 1, 1, 0};
  std::vector<double> pred(kN), dza(kN), dzb(kN);
  double loss = 0;
  const double scale = 0.37;
  auto bce = [&] {
    backend_->BceWithLogits(kN, za.data(), 1, y.data(), 1, scale, pred.data(), dza.data(), 1,
                            &loss);
    return scale * loss;
  };
  bce();
  std::vector<double> g = dza;
  EXPECT_TRUE(std::isfinite(loss));
  ExpectGradient(&za, g, bce, "bce");
  bce();
  for (int i = 0; i < kN; ++i) EXPECT_NEAR(pred[i], 1 / (1 + std::exp(-za[i])), 1e-15) << i;

  auto mse = [&] {
    backend_->SquaredError(kN, za.data(), 1, y.data(), 1, scale, pred.data(), dza.data(), 1, &loss);
    return scale * loss;
  };
  mse();
  g = dza;
  ExpectGradient(&za, g, mse, "mse");

  auto product = [&] {
    std::fill(dza.begin(), dza.end(), 0.0);
    backend_->ProductBceWithLogits(kN, za.data(), zb.data(), 1, y.data(), 1, scale, pred.data(),
                                   dza.data(), dzb.data(), 1, &loss);
    return scale * loss;
  };
  product();
  std::vector<double> ga = dza, gb = dzb;
  EXPECT_TRUE(std::isfinite(loss));
  ExpectGradient(&za, ga, product, "ctcvr dza");
  ExpectGradient(&zb, gb, product, "ctcvr dzb");
  product();
  for (int i = 0; i < kN; ++i) {
    const double p = 1 / (1 + std::exp(-za[i])) / (1 + std::exp(-zb[i]));
    EXPECT_NEAR(pred[i], p, 1e-15);
  }
}

}  // namespace
}  // namespace mtps::models
