// OpenBLAS's kernel choice: which of its per-CPU kernel sets ("cores") this process runs,
// and a restart onto the right one when OpenBLAS fell back to its slowest.
//
//   int main(int argc, char** argv) {
//     mtps::models::RestartOnTheRightBlasCore(argv);  // first, before anything else runs
//     ...
//     LOG(INFO) << "BLAS: " << mtps::models::BlasCoreName();
//
// Why: Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels when the library loads,
// from the CPU model it recognises. On a CPU it does not know (Emerald Rapids, family 6
// model 207, on this project's machines) it falls back to "Prescott", its SSE3 kernels:
// sgemm runs 6-7x slower than with its AVX-512 ones, and a CPU training step 2-3x slower.
// OpenBLAS reads OPENBLAS_CORETYPE only while it loads, too early for main() to set it, so
// a process on Prescott whose CPU has AVX2 sets the variable and executes itself again:
// same pid, arguments and descriptors. Nothing happens when OPENBLAS_CORETYPE is already
// set (a user's choice, or the restarted process), under valgrind (the new image would run
// outside the tool), or when the BLAS is not OpenBLAS.
// Thread-safety: call RestartOnTheRightBlasCore before any thread starts.
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

// Whether a process whose OpenBLAS runs `current_core` should restart on `best_core`:
// only from the generic fallback (Prescott), and only when the user chose nothing
// (`coretype_set` false) and there is something better.
bool ShouldRestartOnBlasCore(const std::string& current_core, const std::string& best_core,
                             bool coretype_set);

// The kernel set OpenBLAS runs in this process ("SkylakeX", "Prescott", ...), or "not
// OpenBLAS" when another BLAS is linked.
std::string BlasCoreName();

// See above. Returns only when no restart is needed or the restart failed (it says why on
// stderr and the process goes on with the kernels it has).
void RestartOnTheRightBlasCore(char** argv);

}  // namespace mtps::models
