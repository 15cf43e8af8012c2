// MakeBackend: parses a device string ("cpu", "cuda:N") and builds that backend, or says
// why it cannot (no CUDA in this build, no such device, double precision on CUDA).
#include "models/backend.h"

#include <charconv>

#include "models/cpu_backend.h"
#ifdef MTPS_WITH_CUDA
#include "models/cuda/cuda_backend.h"
#endif

namespace mtps::models {

int CudaDeviceCount() {
#ifdef MTPS_WITH_CUDA
  return CudaDeviceCountImpl();
#else
  return 0;
#endif
}

template <typename T>
StatusOr<std::unique_ptr<Backend<T>>> MakeBackend(const std::string& device, int cpu_threads) {
  if (device == "cpu") return MakeCpuBackend<T>(cpu_threads);
  const std::string prefix = "cuda:";
  if (device.rfind(prefix, 0) != 0) {
    return InvalidArgument("device '" + device + "': expected \"cpu\" or \"cuda:N\"");
  }
  int ordinal = -1;
  const char* begin = device.data() + prefix.size();
  const char* end = device.data() + device.size();
  auto [ptr, ec] = std::from_chars(begin, end, ordinal);
  if (ec != std::errc() || ptr != end || begin == end || ordinal < 0) {
    return InvalidArgument("device '" + device + "': the CUDA ordinal must be a number >= 0");
  }
  if constexpr (!std::is_same_v<T, float>) {
    return Unimplemented("device '" + device +
                         "': the CUDA backend computes in float only; use \"cpu\" for double");
  } else {
#ifdef MTPS_WITH_CUDA
    return MakeCudaBackend(ordinal);
#else
    return Unavailable("device '" + device +
                       "': this build has no CUDA backend (configure with -DMTPS_CUDA=ON)");
#endif
  }
}

template StatusOr<std::unique_ptr<Backend<float>>> MakeBackend<float>(const std::string&, int);
template StatusOr<std::unique_ptr<Backend<double>>> MakeBackend<double>(const std::string&, int);

}  // namespace mtps::models
