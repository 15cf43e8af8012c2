// The CUDA backend: cuBLAS for matrix products and this folder's kernels for pooling,
// activations, softmax gates, losses and scatter-add. Float only. Compiled only when the
// build has CUDA (MTPS_WITH_CUDA).
//
//   MTPS_ASSIGN_OR_RETURN(auto gpu, MakeCudaBackend(/*ordinal=*/0));
//
// Work goes to one stream per backend; one thread uses a backend at a time.
#pragma once

#include <memory>

#include "models/backend.h"

namespace mtps::models {

StatusOr<std::unique_ptr<Backend<float>>> MakeCudaBackend(int ordinal);
int CudaDeviceCountImpl();

}  // namespace mtps::models
