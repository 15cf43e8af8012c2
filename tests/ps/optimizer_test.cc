// RowOptimizer against reference formulas computed in double, several steps each, with
// L2; plus state sizes and a dense block treated as one long row.
#include "ps/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace mtps::ps {
namespace {

using Type = OptimizerSpec::Type;

// One step of each optimizer on one element, in double: the textbook formulas.
struct Reference {
  OptimizerSpec spec;
  double w, s0, s1;  // weight and up to two state values

  void Step(double g, uint64_t t) {
    g += spec.l2 * w;
    switch (spec.type) {
      case Type::kSgd:
        w -= spec.lr * g;
        break;
      case Type::kAdagrad:
        s0 += g * g;
        w -= spec.lr * g / (std::sqrt(s0) + spec.epsilon);
        break;
      case Type::kAdam:
      case Type::kAdamW: {
        if (spec.type == Type::kAdamW) w -= spec.lr * spec.weight_decay * w;
        s0 = spec.beta1 * s0 + (1 - double(spec.beta1)) * g;
        s1 = spec.beta2 * s1 + (1 - double(spec.beta2)) * g * g;
        const double m_hat = s0 / (1 - std::pow(double(spec.beta1), double(t)));
        const double v_hat = s1 / (1 - std::pow(double(spec.beta2), double(t)));
        w -= spec.lr * m_hat / (std::sqrt(v_hat) + spec.epsilon);
        break;
      }
      case Type::kFtrl: {
        // McMahan et al. 2013, Algorithm 1, per coordinate (z = s0, n = s1).
        const double n_new = s1 + g * g;
        const double sigma = (std::sqrt(n_new) - std::sqrt(s1)) / spec.ftrl_alpha;
        s0 += g - sigma * w;
        s1 = n_new;
        if (std::fabs(s0) <= spec.ftrl_l1) {
          w = 0;
        } else {
          const double sign = s0 < 0 ? -1.0 : 1.0;
          w = -(s0 - sign * spec.ftrl_l1) /
              ((spec.ftrl_beta + std::sqrt(s1)) / spec.ftrl_alpha + spec.ftrl_l2);
        }
        break;
      }
    }
  }
};

OptimizerSpec SpecOf(Type type) {
  OptimizerSpec s;
  s.type = type;
  s.lr = 0.05f;
  s.l2 = 0.01f;
  s.weight_decay = 0.1f;
  s.initial_accumulator = 0.1f;
  s.ftrl_alpha = 0.1f;
  s.ftrl_beta = 1.0f;
  s.ftrl_l1 = 0.001f;
  s.ftrl_l2 = 0.01f;
  return s;
}

class OptimizerReferenceTest : public ::testing::TestWithParam<Type> {};

TEST_P(OptimizerReferenceTest, MatchesDoubleFormulasOverManySteps) {
  const OptimizerSpec spec = SpecOf(GetParam());
  RowOptimizer opt(spec);
  constexpr int kDim = 37;  // not a multiple of any vector width: the tail loop runs too
  constexpr int kSteps = 25;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  std::vector<float> w(kDim), state(opt.StateFloats(kDim)), g(kDim);
  for (float& x : w) x = 0.1f * normal(rng);
  opt.InitState(state.data(), kDim);
  std::vector<Reference> ref(kDim);
  for (int i = 0; i < kDim; ++i) {
    ref[i] = {spec, w[i], 0.0, 0.0};
    if (spec.type == Type::kAdagrad) ref[i].s0 = spec.initial_accumulator;
  }
  for (int t = 1; t <= kSteps; ++t) {
    for (float& x : g) x = normal(rng);
    opt.Apply(w.data(), state.data(), g.data(), kDim, t);
    for (int i = 0; i < kDim; ++i) ref[i].Step(g[i], t);
  }
  for (int i = 0; i < kDim; ++i) {
    const double tol = 2e-5 * std::max(1.0, std::fabs(ref[i].w));
    EXPECT_NEAR(w[i], ref[i].w, tol) << "element " << i;
  }
  // The state is what the header promises: accumulator, m/v, or z/n.
  if (spec.type == Type::kAdagrad) {
    EXPECT_NEAR(state[3], ref[3].s0, 1e-4 * ref[3].s0);
  }
  if (spec.type == Type::kAdam || spec.type == Type::kFtrl) {
    EXPECT_NEAR(state[kDim + 3], ref[3].s1, 1e-4 * std::max(1.0, ref[3].s1));
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, OptimizerReferenceTest,
                         ::testing::Values(Type::kSgd, Type::kAdagrad, Type::kAdam, Type::kAdamW,
                                           Type::kFtrl),
                         [](const auto& info) { return std::string(OptimizerTypeName(info.param)); });

TEST(OptimizerTest, StateFloatsPerType) {
  EXPECT_EQ(StateFloats(SpecOf(Type::kSgd), 16), 0);
  EXPECT_EQ(StateFloats(SpecOf(Type::kAdagrad), 16), 16);
  EXPECT_EQ(StateFloats(SpecOf(Type::kAdam), 16), 32);
  EXPECT_EQ(StateFloats(SpecOf(Type::kAdamW), 16), 32);
  EXPECT_EQ(StateFloats(SpecOf(Type::kFtrl), 16), 32);
}

// The tables call the fixed-width kernel for dim-16 Adagrad rows: it must be the general
// kernel bit for bit, over many steps, with and without L2.
TEST(OptimizerTest, AdagradRow16IsTheGeneralKernelBitForBit) {
  std::mt19937 rng(16);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (float l2 : {0.0f, 0.01f}) {
    std::vector<float> w(16), acc(16, 0.1f), g(16);
    for (float& x : w) x = normal(rng);
    std::vector<float> w16 = w, acc16 = acc;
    for (int step = 0; step < 50; ++step) {
      for (float& x : g) x = normal(rng);
      row_kernels::AdagradRow(w.data(), acc.data(), g.data(), 16, 0.05f, l2, 1e-8f);
      row_kernels::AdagradRow16(w16.data(), acc16.data(), g.data(), 0.05f, l2, 1e-8f);
      for (int i = 0; i < 16; ++i) {
        ASSERT_EQ(std::memcmp(&w[i], &w16[i], sizeof(float)), 0) << "step " << step;
        ASSERT_EQ(std::memcmp(&acc[i], &acc16[i], sizeof(float)), 0) << "step " << step;
      }
    }
  }
}

TEST(OptimizerTest, AdagradStartsFromInitialAccumulator) {
  OptimizerSpec spec = SpecOf(Type::kAdagrad);
  spec.initial_accumulator = 0.25f;
  RowOptimizer opt(spec);
  std::vector<float> state(opt.StateFloats(4), -1.0f);
  opt.InitState(state.data(), 4);
  for (float s : state) EXPECT_EQ(s, 0.25f);
}

TEST(OptimizerTest, AdamBiasCorrectionUsesTheRowsOwnStepCount) {
  // The first Adam step moves every weight by about lr, whatever the gradient's scale.
  OptimizerSpec spec = SpecOf(Type::kAdam);
  spec.l2 = 0;
  RowOptimizer opt(spec);
  std::vector<float> w = {0, 0, 0}, state(6, 0.0f), g = {1e-3f, 5.0f, -200.0f};
  opt.Apply(w.data(), state.data(), g.data(), 3, 1);
  EXPECT_NEAR(w[0], -spec.lr, 1e-4);
  EXPECT_NEAR(w[1], -spec.lr, 1e-6);
  EXPECT_NEAR(w[2], spec.lr, 1e-6);
}

TEST(OptimizerTest, DenseBlockIsOneLongRowWithTheSameResultAsRowByRow) {
  RowOptimizer opt(SpecOf(Type::kAdam));
  constexpr int kRows = 50, kDim = 16, kN = kRows * kDim;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> block(kN), rows(kN), g(kN);
  for (int i = 0; i < kN; ++i) block[i] = rows[i] = normal(rng);
  std::vector<float> block_state(2 * kN, 0.0f), row_state(2 * kN, 0.0f);
  for (int t = 1; t <= 3; ++t) {
    for (float& x : g) x = normal(rng);
    opt.Apply(block.data(), block_state.data(), g.data(), kN, t);
    for (int r = 0; r < kRows; ++r) {
      // Row r's state: m then v of its own 16 floats.
      std::vector<float> st(2 * kDim);
      for (int i = 0; i < kDim; ++i) {
        st[i] = row_state[r * kDim + i];
        st[kDim + i] = row_state[kN + r * kDim + i];
      }
      opt.Apply(rows.data() + r * kDim, st.data(), g.data() + r * kDim, kDim, t);
      for (int i = 0; i < kDim; ++i) {
        row_state[r * kDim + i] = st[i];
        row_state[kN + r * kDim + i] = st[kDim + i];
      }
    }
  }
  EXPECT_EQ(block, rows);  // element-wise math: bit-identical however it is cut
}

}  // namespace
}  // namespace mtps::ps
