// OpenBLAS's kernel set: what the CPU could run, what OpenBLAS chose, and the restart that
// fixes its fallback to the generic kernels (see blas_core.h).
#include "models/blas_core.h"

#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// OpenBLAS's own: weak, so that another BLAS links and BlasCoreName() says so.
extern "C" char* openblas_get_corename(void) __attribute__((weak));

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

bool ShouldRestartOnBlasCore(const std::string& current_core, const std::string& best_core,
                             bool coretype_set) {
  return !coretype_set && !best_core.empty() &&
         strcasecmp(current_core.c_str(), "Prescott") == 0;
}

std::string BlasCoreName() {
  if (openblas_get_corename == nullptr) return "not OpenBLAS";
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "unknown";
}

void RestartOnTheRightBlasCore(char** argv) {
  if (openblas_get_corename == nullptr) return;
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload != nullptr && std::strstr(preload, "vgpreload") != nullptr) return;  // valgrind
  const std::string best = BestBlasCoreFor(ThisCpuVectorFeatures());
  if (!ShouldRestartOnBlasCore(BlasCoreName(), best,
                               std::getenv("OPENBLAS_CORETYPE") != nullptr)) {
    return;
  }
  setenv("OPENBLAS_CORETYPE", best.c_str(), /*overwrite=*/1);
  // The binary's own path, so that the process keeps its name (comm: ps, pgrep, top);
  // /proc/self/exe would rename it "exe".
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) {
    path[n] = '\0';
    execv(path, argv);
  }
  execv("/proc/self/exe", argv);
  // Still here: the restart failed. Going on is right, only slower.
  std::fprintf(stderr,
               "%s: OpenBLAS runs its generic Prescott kernels on this CPU, and restarting with "
               "OPENBLAS_CORETYPE=%s failed (%s); set it in the environment for %s kernels\n",
               argv[0], best.c_str(), std::strerror(errno), best.c_str());
}

}  // namespace mtps::models
