// PayloadPool: buffers come back and are reused (no new allocation in steady state), the
// cache stays under its cap, and a buffer may outlive its pool.
#include "protocol/payload_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace mtps {
namespace {

TEST(PayloadPoolTest, ReleasedBuffersAreReusedWithoutNewAllocations) {
  PayloadPool pool;
  const size_t bytes = 3 * PayloadPool::kMinBytes + 5;
  kj::byte* first = nullptr;
  {
    std::shared_ptr<kj::byte> buffer = pool.Acquire(bytes);
    first = buffer.get();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
    std::memset(first, 0x5a, bytes + sizeof(uint64_t));  // the whole promised size is usable
  }
  for (int i = 0; i < 100; ++i) {
    std::shared_ptr<kj::byte> buffer = pool.Acquire(bytes - i);  // same size class
    EXPECT_EQ(buffer.get(), first);
    EXPECT_EQ(buffer.get()[0], 0x5a) << "a reused buffer is not zeroed";
  }
  const PayloadPool::Counters c = pool.counters();
  EXPECT_EQ(c.acquired, 101u);
  EXPECT_EQ(c.allocated, 1u);
}

TEST(PayloadPoolTest, BuffersHeldAtOnceAreDistinct) {
  PayloadPool pool;
  std::vector<std::shared_ptr<kj::byte>> held;
  for (int i = 0; i < 8; ++i) held.push_back(pool.Acquire(PayloadPool::kMinBytes));
  for (size_t i = 0; i < held.size(); ++i)
    for (size_t j = i + 1; j < held.size(); ++j) EXPECT_NE(held[i].get(), held[j].get());
  EXPECT_EQ(pool.counters().allocated, 8u);
}

TEST(PayloadPoolTest, TheCacheStaysUnderItsCap) {
  const size_t cap = 4 * PayloadPool::kMinBytes;
  PayloadPool pool(cap);
  {
    std::vector<std::shared_ptr<kj::byte>> held;
    for (int i = 0; i < 10; ++i) held.push_back(pool.Acquire(PayloadPool::kMinBytes));
  }
  EXPECT_LE(pool.counters().cached_bytes, cap);
  EXPECT_GT(pool.counters().cached_bytes, 0u);
}

TEST(PayloadPoolTest, ABufferMayOutliveItsPool) {
  std::shared_ptr<kj::byte> buffer;
  {
    PayloadPool pool;
    buffer = pool.Acquire(PayloadPool::kMinBytes * 2);
  }
  buffer.get()[0] = 1;
  buffer.reset();  // freed, not returned to a pool that is gone (ASan would say)
}

}  // namespace
}  // namespace mtps
