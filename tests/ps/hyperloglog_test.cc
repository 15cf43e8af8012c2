// HyperLogLog: estimates within three standard errors from tens to millions of distinct
// keys, duplicates not counted, structured keys spread, unions by Merge.
#include "ps/hyperloglog.h"

#include <gtest/gtest.h>

#include <random>

namespace mtps::ps {
namespace {

TEST(HyperLogLogTest, EstimatesWithinThreeStandardErrorsAtEveryScale) {
  for (uint64_t n : {10ull, 1000ull, 30000ull, 1000000ull}) {
    HyperLogLog sequential, random;
    std::mt19937_64 rng(n);
    for (uint64_t k = 0; k < n; ++k) {
      sequential.Add(k);  // structured keys: small consecutive integers
      random.Add(rng());
    }
    const double tolerance = 3 * sequential.RelativeError() * double(n) + 1;
    EXPECT_NEAR(sequential.Estimate(), double(n), tolerance) << n << " sequential keys";
    EXPECT_NEAR(random.Estimate(), double(n), tolerance) << n << " random keys";
  }
}

TEST(HyperLogLogTest, RepeatedKeysCountOnce) {
  HyperLogLog hll;
  for (int pass = 0; pass < 20; ++pass) {
    for (uint64_t k = 0; k < 5000; ++k) hll.Add(k * 7919);
  }
  EXPECT_NEAR(hll.Estimate(), 5000.0, 3 * hll.RelativeError() * 5000);
  EXPECT_EQ(HyperLogLog().Estimate(), 0.0);
}

TEST(HyperLogLogTest, MergeIsTheUnion) {
  HyperLogLog a, b;
  for (uint64_t k = 0; k < 60000; ++k) a.Add(k);
  for (uint64_t k = 40000; k < 100000; ++k) b.Add(k);
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_NEAR(a.Estimate(), 100000.0, 3 * a.RelativeError() * 100000);
  HyperLogLog coarse(10);
  EXPECT_EQ(a.Merge(coarse).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mtps::ps
