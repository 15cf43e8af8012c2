// OpenBLAS's kernel choice: which of its per-CPU kernel sets ("cores") this process runs,
// and the switch to the best one when OpenBLAS fell back to its slowest.
//
//   UseTheBestBlasKernels();   // the CPU backend does it when it is made: before any BLAS call
//   LOG(INFO) << "BLAS: " << BlasCoreName();   // "SkylakeX"
//
// Why: Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels when the library loads,
// from the CPU model it recognises. On a CPU it does not know (Emerald Rapids, family 6
// model 207, on this project's machines) it falls back to "Prescott", its SSE3 kernels:
// sgemm runs 4-7x slower than with its AVX-512 ones, and a CPU training step 2.5x slower.
// The library reads OPENBLAS_CORETYPE only while it loads, too early for main(); but its
// DYNAMIC_ARCH builds export the pair that makes the choice (gotoblas_dynamic_quit/init),
// so the process sets the variable and has OpenBLAS choose again, before any BLAS call.
// Nothing happens when OPENBLAS_CORETYPE is already set (the user's choice), when OpenBLAS
// chose anything but Prescott, or when the BLAS is not OpenBLAS. The variable stays set, so
// child processes load the same kernels.
// Thread-safety: UseTheBestBlasKernels runs once per process (std::call_once) and must come
// before the first BLAS call. It calls setenv, which races with other threads reading the
// environment: a program makes its first CPU backend before it starts threads (mtps-worker
// does at startup). Every other function is pure or reads only.
#pragma once

#include <string>

namespace mtps::models {

// The vector extensions that decide OpenBLAS's x86-64 kernel set.
struct CpuVectorFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
};

CpuVectorFeatures ThisCpuVectorFeatures();

// OpenBLAS's name of the best kernel set a CPU with `features` runs ("SkylakeX" for
// AVX-512 F/BW/DQ/VL, "Haswell" for AVX2 + FMA), or "" when its generic kernels are right.
std::string BestBlasCoreFor(const CpuVectorFeatures& features);

// Whether a process whose OpenBLAS runs `current_core` should switch to `best_core`: only
// from the generic fallback (Prescott), and only when the user chose nothing
// (`coretype_set` false) and there is something better.
bool ShouldSwitchBlasCore(const std::string& current_core, const std::string& best_core,
                          bool coretype_set);

// The kernel set OpenBLAS runs in this process ("SkylakeX", "Prescott", ...), or "not
// OpenBLAS" when another BLAS is linked.
std::string BlasCoreName();

// See above.
void UseTheBestBlasKernels();

}  // namespace mtps::models
