// MemoryBudget: one parameter server's byte budget for its embedding tables, shared by
// every table of every shard. Past it no new row is created — a pull of a new key returns
// the key's initial value and a push to it is dropped, as before admission — while rows
// that exist keep training. So a stream of requests for new keys cannot grow a server
// without bound even when its tables set no capacity of their own.
//
//   MemoryBudget budget(8ull << 30);
//   table->set_memory_budget(&budget);   // the table reports its size changes
//   if (!budget.Exhausted()) ... create a row ...
//
// Tables report their size after each request, so the budget may be passed by at most one
// request's new rows per shard. Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace mtps::ps {

class MemoryBudget {
 public:
  // 0 = no limit (sizes are still added up, for /metrics).
  explicit MemoryBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}

  void Add(int64_t delta_bytes) { used_.fetch_add(delta_bytes, std::memory_order_relaxed); }
  bool Exhausted() const {
    return limit_ > 0 && used_.load(std::memory_order_relaxed) >= static_cast<int64_t>(limit_);
  }
  void CountRefused(uint64_t rows) { refused_.fetch_add(rows, std::memory_order_relaxed); }

  uint64_t limit() const { return limit_; }
  uint64_t used() const {
    const int64_t used = used_.load(std::memory_order_relaxed);
    return used > 0 ? static_cast<uint64_t>(used) : 0;
  }
  uint64_t refused_rows() const { return refused_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace mtps::ps
