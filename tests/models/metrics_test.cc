// Metrics against hand-computed values: exact AUC with ties, log loss, MSE, and the
// streaming AUC staying within its documented error bound (which is tight).
#include "models/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace mtps::models {
namespace {

TEST(ExactAucTest, HandComputedCaseWithTies) {
  // Positives 0.35, 0.8, 0.4; negatives 0.1, 0.4. Of the 6 pairs the positives win 4,
  // lose 1 (0.35 < 0.4) and tie 1 (0.4 = 0.4): (4 + 0.5) / 6.
  std::vector<float> p = {0.1f, 0.4f, 0.35f, 0.8f, 0.4f};
  std::vector<float> y = {0, 0, 1, 1, 1};
  auto auc = ExactAuc(p, y);
  ASSERT_TRUE(auc.ok()) << auc.status();
  EXPECT_DOUBLE_EQ(*auc, 4.5 / 6);
}

TEST(ExactAucTest, AllTiedIsOneHalfAndOrderingsAreExtremes) {
  std::vector<float> y = {1, 0, 1, 0, 0};
  EXPECT_DOUBLE_EQ(*ExactAuc(std::vector<float>(5, 0.3f), y), 0.5);
  EXPECT_DOUBLE_EQ(*ExactAuc(std::vector<float>{0.9f, 0.1f, 0.8f, 0.2f, 0.3f}, y), 1.0);
  EXPECT_DOUBLE_EQ(*ExactAuc(std::vector<float>{0.1f, 0.9f, 0.2f, 0.8f, 0.7f}, y), 0.0);
  // Two tie groups: {0.5: +,-,-} {0.7: +,-}: pairs (+0.5 vs -0.5 x2: ties), (+0.7 beats
  // both -0.5, ties -0.7), (+0.5 loses to -0.7): (0.5 + 0.5 + 1 + 1 + 0.5 + 0) / 6.
  std::vector<float> p2 = {0.5f, 0.5f, 0.5f, 0.7f, 0.7f};
  std::vector<float> y2 = {1, 0, 0, 1, 0};
  EXPECT_DOUBLE_EQ(*ExactAuc(p2, y2), 3.5 / 6);
}

TEST(ExactAucTest, RefusesOneClassAndMismatchedSizes) {
  auto one_class = ExactAuc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1, 1});
  ASSERT_FALSE(one_class.ok());
  EXPECT_NE(one_class.status().message().find("2 positives and 0 negatives"), std::string::npos)
      << one_class.status();
  auto sizes = ExactAuc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1});
  ASSERT_FALSE(sizes.ok());
  EXPECT_NE(sizes.status().message().find("2 predictions but 1 labels"), std::string::npos);
}

TEST(LossMetricsTest, LogLossAndMse) {
  std::vector<float> p = {0.9f, 0.2f}, y = {1, 0};
  EXPECT_NEAR(*LogLoss(p, y), -(std::log(0.9) + std::log(0.8)) / 2, 1e-6);
  // Clipping keeps a confident mistake finite.
  EXPECT_TRUE(std::isfinite(*LogLoss(std::vector<float>{0.0f}, std::vector<float>{1})));
  EXPECT_NEAR(*MeanSquaredError(std::vector<float>{1.0f, 3.0f}, std::vector<float>{2, 1}),
              (1.0 + 4.0) / 2, 1e-12);
  EXPECT_FALSE(MeanSquaredError(std::vector<float>{}, std::vector<float>{}).ok());
}

TEST(StreamingAucTest, WithinItsBoundOfTheExactAuc) {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> score(0.0, 1.0);
  std::vector<float> p, y;
  for (int i = 0; i < 200000; ++i) {
    const bool positive = rng() % 5 == 0;
    const double z = score(rng) + (positive ? 0.8 : 0.0);
    p.push_back(static_cast<float>(1 / (1 + std::exp(-z))));
    y.push_back(positive ? 1.0f : 0.0f);
  }
  const double exact = *ExactAuc(p, y);
  for (int buckets : {16, 256, 1 << 16}) {
    StreamingAuc s(buckets);
    s.Add(p, y);
    const double approx = *s.Auc(), bound = s.ErrorBound();
    EXPECT_LE(std::abs(approx - exact), bound) << buckets << " buckets";
    if (buckets == (1 << 16)) {
      EXPECT_LT(bound, 1e-4);
    }
  }
}

TEST(StreamingAucTest, BoundIsReachedWhenABucketHidesTheOrder) {
  // Every positive above every negative, all inside one bucket: exact 1, histogram 1/2,
  // error exactly the bound.
  StreamingAuc s(4);
  for (int i = 0; i < 10; ++i) {
    s.Add(0.01f + 0.001f * i, 0);
    s.Add(0.2f - 0.001f * i, 1);
  }
  EXPECT_DOUBLE_EQ(*s.Auc(), 0.5);
  EXPECT_DOUBLE_EQ(s.ErrorBound(), 0.5);
}

TEST(StreamingAucTest, MergeAddsHistogramsAndRefusesOtherShapes) {
  StreamingAuc a(8), b(8), whole(8), other(16);
  a.Add(0.9f, 1);
  a.Add(0.1f, 0);
  b.Add(0.3f, 1);
  b.Add(0.6f, 0);
  for (auto [p, l] : {std::pair{0.9f, 1.f}, {0.1f, 0.f}, {0.3f, 1.f}, {0.6f, 0.f}}) whole.Add(p, l);
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_DOUBLE_EQ(*a.Auc(), *whole.Auc());
  EXPECT_EQ(a.positives(), 2u);
  EXPECT_FALSE(a.Merge(other).ok());
  StreamingAuc empty;
  EXPECT_FALSE(empty.Auc().ok());
}

}  // namespace
}  // namespace mtps::models
