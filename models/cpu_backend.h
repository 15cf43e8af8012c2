// The CPU backend: OpenBLAS sgemm/dgemm for matrix products, plain loops the compiler
// vectorizes for everything else. Float and double (double serves the gradient checks).
//
//   std::unique_ptr<Backend<double>> cpu = MakeCpuBackend<double>(/*threads=*/1);
//
// Thread count is OpenBLAS's, which is process-wide. One thread uses a backend at a time.
#pragma once

#include <memory>

#include "models/backend.h"

namespace mtps::models {

template <typename T>
std::unique_ptr<Backend<T>> MakeCpuBackend(int threads);

}  // namespace mtps::models
