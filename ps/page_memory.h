// PageBuffer: a zero-filled, page-aligned block of memory taken straight from the kernel
// (mmap), so the tables can report exactly the bytes they hold resident.
//
//   PageBuffer buf(1 << 20);          // 1 MiB, zero-filled, pages touched lazily
//   auto* p = buf.as<float>();
//   buf.bytes();                      // rounded up to whole pages
//
// malloc hides its own overhead and arena slack; the tables' memory report (and the
// capacity_bytes limit) must match what the process really grows by, so the big
// structures (row slabs, hash index, sketch) live in PageBuffers.
// Thread-safety: none of its own; it is a plain owned buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace mtps::ps {

class PageBuffer {
 public:
  PageBuffer() = default;
  // Aborts (LOG(FATAL)) when the kernel refuses the memory: a server that cannot hold
  // its rows has no sensible way to go on.
  explicit PageBuffer(size_t bytes);
  ~PageBuffer() { Release(); }
  PageBuffer(PageBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PageBuffer& operator=(PageBuffer&& other) noexcept {
    if (this != &other) {
      Release();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  static size_t RoundUpToPages(size_t bytes);

 private:
  void Release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace mtps::ps
