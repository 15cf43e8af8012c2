// The OpenBLAS kernel set: the best one for a CPU's vector extensions, when a process
// restarts onto it (only from the generic Prescott fallback, only when the user chose
// nothing), and that mtps-worker on this machine runs what the CPU supports.
#include "models/blas_core.h"

#include <gtest/gtest.h>

namespace mtps::models {
namespace {

TEST(BlasCoreTest, TheBestKernelsFollowTheVectorExtensions) {
  EXPECT_EQ(BestBlasCoreFor({}), "");
  EXPECT_EQ(BestBlasCoreFor({.avx2 = true}), "") << "OpenBLAS's Haswell kernels need FMA";
  EXPECT_EQ(BestBlasCoreFor({.avx2 = true, .fma = true}), "Haswell");
  EXPECT_EQ(BestBlasCoreFor({.avx2 = true, .fma = true, .avx512f = true}), "Haswell")
      << "SkylakeX kernels use BW, DQ and VL too";
  EXPECT_EQ(BestBlasCoreFor({.avx2 = true, .fma = true, .avx512f = true, .avx512bw = true,
                             .avx512dq = true, .avx512vl = true}),
            "SkylakeX");
}

TEST(BlasCoreTest, OnlyTheGenericFallbackRestartsAndOnlyWhenTheUserChoseNothing) {
  EXPECT_TRUE(ShouldRestartOnBlasCore("Prescott", "SkylakeX", false));
  EXPECT_TRUE(ShouldRestartOnBlasCore("prescott", "Haswell", false));
  EXPECT_FALSE(ShouldRestartOnBlasCore("Prescott", "SkylakeX", true)) << "OPENBLAS_CORETYPE set";
  EXPECT_FALSE(ShouldRestartOnBlasCore("Prescott", "", false)) << "nothing better";
  EXPECT_FALSE(ShouldRestartOnBlasCore("Haswell", "SkylakeX", false))
      << "a core OpenBLAS recognised is its choice";
  EXPECT_FALSE(ShouldRestartOnBlasCore("not OpenBLAS", "SkylakeX", false));
}

TEST(BlasCoreTest, ThisProcessKnowsItsKernels) {
  const std::string name = BlasCoreName();
  EXPECT_FALSE(name.empty());
  EXPECT_NE(name, "unknown");
}

}  // namespace
}  // namespace mtps::models
