// PayloadPool: reusable, pre-faulted, word-aligned buffers for the large Data fields of
// messages (keys, rows, gradients) that are sent without a copy.
//
//   PayloadPool pool;                                  // one per client or server
//   std::shared_ptr<kj::byte> buffer = pool.Acquire(bytes);
//   std::memcpy(buffer.get(), rows, bytes);            // back in the pool when released
//
// Why: a freshly allocated buffer costs a page fault per 4 KiB on first touch (about
// 0.35 GB/s on these machines) and Cap'n Proto zeroes every segment it allocates; a
// pooled buffer was faulted in once and is overwritten in place (16 GB/s). Buffers come in
// power-of-two size classes from kMinBytes; a pool keeps at most max_cached_bytes of free
// buffers and frees the rest.
//
// Thread-safety: Acquire from any thread; a buffer may be released on any thread, also
// after the pool itself is gone.
#pragma once

#include <cstddef>
#include <memory>

#include <kj/common.h>

namespace mtps {

class PayloadPool {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;  // smaller payloads are not pooled
  static constexpr size_t kDefaultMaxCachedBytes = size_t{512} << 20;

  explicit PayloadPool(size_t max_cached_bytes = kDefaultMaxCachedBytes);
  ~PayloadPool();
  PayloadPool(const PayloadPool&) = delete;
  PayloadPool& operator=(const PayloadPool&) = delete;

  // A buffer of at least `bytes` plus one word (Cap'n Proto may read to the next word
  // boundary), aligned to 64 bytes, its pages faulted in; never zeroed on reuse.
  std::shared_ptr<kj::byte> Acquire(size_t bytes);

  struct Counters {
    size_t acquired = 0;   // Acquire calls
    size_t allocated = 0;  // of those, served by a new allocation
    size_t cached_bytes = 0;
  };
  Counters counters() const;

 private:
  struct Core;
  std::shared_ptr<Core> core_;
};

}  // namespace mtps
