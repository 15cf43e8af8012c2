// PageBuffer: anonymous private mappings, released with munmap.
// Fresh anonymous pages read as zero, which the hash index and sketch rely on.
#include "ps/page_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <glog/logging.h>

namespace mtps::ps {

size_t PageBuffer::RoundUpToPages(size_t bytes) {
  static const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + kPage - 1) / kPage * kPage;
}

PageBuffer::PageBuffer(size_t bytes) {
  if (bytes == 0) return;
  bytes_ = RoundUpToPages(bytes);
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    LOG(FATAL) << "mmap of " << bytes_ << " bytes failed: " << std::strerror(errno);
  }
  data_ = p;
}

void PageBuffer::Release() {
  if (data_ != nullptr) munmap(data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace mtps::ps
