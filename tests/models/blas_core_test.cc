// The OpenBLAS kernel set: the best one for a CPU's vector extensions, when a process
// switches to it (only from the generic Prescott fallback, only when the user chose
// nothing), and that a CPU backend runs the best kernels this CPU supports.
#include "models/blas_core.h"

#include <strings.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "models/cpu_backend.h"

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

TEST(BlasCoreTest, OnlyTheGenericFallbackSwitchesAndOnlyWhenTheUserChoseNothing) {
  EXPECT_TRUE(ShouldSwitchBlasCore("Prescott", "SkylakeX", false));
  EXPECT_TRUE(ShouldSwitchBlasCore("prescott", "Haswell", false));
  EXPECT_FALSE(ShouldSwitchBlasCore("Prescott", "SkylakeX", true)) << "OPENBLAS_CORETYPE set";
  EXPECT_FALSE(ShouldSwitchBlasCore("Prescott", "", false)) << "nothing better";
  EXPECT_FALSE(ShouldSwitchBlasCore("Haswell", "SkylakeX", false))
      << "a core OpenBLAS recognised is its choice";
  EXPECT_FALSE(ShouldSwitchBlasCore("not OpenBLAS", "SkylakeX", false));
}

TEST(BlasCoreTest, ACpuBackendRunsTheBestKernelsOfThisCpu) {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  const bool user_forced_prescott = forced != nullptr && strcasecmp(forced, "Prescott") == 0;
  auto backend = MakeCpuBackend<float>(1);
  ASSERT_NE(backend, nullptr);
  const std::string name = BlasCoreName();
  EXPECT_NE(name, "unknown");
  if (!BestBlasCoreFor(ThisCpuVectorFeatures()).empty() && !user_forced_prescott) {
    EXPECT_STRCASENE(name.c_str(), "Prescott") << "this CPU has AVX2 or AVX-512";
  }
}

}  // namespace
}  // namespace mtps::models
