// OpenBLAS's kernel set: what the CPU could run, what OpenBLAS chose, and the switch that
// undoes its fallback to the generic kernels (see blas_core.h).
#include "models/blas_core.h"

#include <strings.h>

#include <cstdlib>
#include <mutex>

// OpenBLAS's own (DYNAMIC_ARCH builds). Weak, so that another BLAS links and nothing is
// switched: BlasCoreName() then says so.
extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
}

namespace mtps::models {

CpuVectorFeatures ThisCpuVectorFeatures() {
  __builtin_cpu_init();
  CpuVectorFeatures f;
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  return f;
}

std::string BestBlasCoreFor(const CpuVectorFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) return "SkylakeX";
  if (f.avx2 && f.fma) return "Haswell";
  return "";
}

bool ShouldSwitchBlasCore(const std::string& current_core, const std::string& best_core,
                          bool coretype_set) {
  return !coretype_set && !best_core.empty() &&
         strcasecmp(current_core.c_str(), "Prescott") == 0;
}

std::string BlasCoreName() {
  if (openblas_get_corename == nullptr) return "not OpenBLAS";
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "unknown";
}

void UseTheBestBlasKernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (gotoblas_dynamic_quit == nullptr || gotoblas_dynamic_init == nullptr) return;
    const std::string best = BestBlasCoreFor(ThisCpuVectorFeatures());
    if (!ShouldSwitchBlasCore(BlasCoreName(), best, std::getenv("OPENBLAS_CORETYPE") != nullptr))
      return;
    setenv("OPENBLAS_CORETYPE", best.c_str(), /*overwrite=*/1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
  });
}

}  // namespace mtps::models
