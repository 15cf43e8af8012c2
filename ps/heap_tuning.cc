// KeepLargeBuffersInTheHeap: mallopt() settings that keep message-sized blocks reusable.
#include "ps/heap_tuning.h"

#include <malloc.h>

#include <glog/logging.h>

namespace mtps {

void KeepLargeBuffersInTheHeap() {
#if defined(__SANITIZE_ADDRESS__)
  return;  // ASan's allocator replaces glibc's and refuses every mallopt: nothing to tune
#endif
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit (half its heap size).
  constexpr int kMmapThreshold = 32 << 20;
  constexpr int kTrimThreshold = 1 << 30;
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1)
    LOG(WARNING) << "mallopt(M_MMAP_THRESHOLD, " << kMmapThreshold << ") refused";
  if (mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1)
    LOG(WARNING) << "mallopt(M_TRIM_THRESHOLD, " << kTrimThreshold << ") refused";
}

}  // namespace mtps
