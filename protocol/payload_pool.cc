// PayloadPool: one free list per power-of-two size class under one mutex (a few
// operations per request; never on a per-key path), buffers returned by shared_ptr
// deleters that hold the pool's core alive.
#include "protocol/payload_pool.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace mtps {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kPageBytes = 4096;
constexpr int kClasses = 48;

int ClassOf(size_t bytes) {
  return std::countr_zero(std::bit_ceil(std::max(bytes, PayloadPool::kMinBytes)));
}

}  // namespace

struct PayloadPool::Core {
  explicit Core(size_t max_cached) : max_cached_bytes(max_cached) {}
  ~Core() {
    for (auto& list : free)
      for (kj::byte* b : list) std::free(b);
  }

  void Release(kj::byte* buffer, int size_class) {
    const size_t bytes = size_t{1} << size_class;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (cached_bytes + bytes <= max_cached_bytes) {
        free[size_class].push_back(buffer);
        cached_bytes += bytes;
        return;
      }
    }
    std::free(buffer);
  }

  const size_t max_cached_bytes;
  mutable std::mutex mutex;
  std::vector<kj::byte*> free[kClasses];  // GUARDED_BY(mutex)
  size_t cached_bytes = 0;               // GUARDED_BY(mutex)
  size_t acquired = 0;                   // GUARDED_BY(mutex)
  size_t allocated = 0;                  // GUARDED_BY(mutex)
};

PayloadPool::PayloadPool(size_t max_cached_bytes)
    : core_(std::make_shared<Core>(max_cached_bytes)) {}

PayloadPool::~PayloadPool() = default;

std::shared_ptr<kj::byte> PayloadPool::Acquire(size_t bytes) {
  const int size_class = ClassOf(bytes + sizeof(uint64_t));
  kj::byte* buffer = nullptr;
  {
    std::lock_guard<std::mutex> lock(core_->mutex);
    ++core_->acquired;
    auto& list = core_->free[size_class];
    if (!list.empty()) {
      buffer = list.back();
      list.pop_back();
      core_->cached_bytes -= size_t{1} << size_class;
    } else {
      ++core_->allocated;
    }
  }
  if (buffer == nullptr) {
    const size_t capacity = size_t{1} << size_class;
    buffer = static_cast<kj::byte*>(std::aligned_alloc(kAlignment, capacity));
    if (buffer == nullptr) throw std::bad_alloc();
    // Fault every page in now, once, rather than on each first write of a message.
    for (size_t off = 0; off < capacity; off += kPageBytes) buffer[off] = 0;
  }
  return std::shared_ptr<kj::byte>(
      buffer, [core = core_, size_class](kj::byte* b) { core->Release(b, size_class); });
}

PayloadPool::Counters PayloadPool::counters() const {
  std::lock_guard<std::mutex> lock(core_->mutex);
  return Counters{core_->acquired, core_->allocated, core_->cached_bytes};
}

}  // namespace mtps
