// The clock the scheduler reads for heartbeat deadlines and timeouts, behind an interface
// so that tests can move time by hand instead of sleeping.
//
//   ManualClock clock;                       // tests
//   FailureDetector detector(&clock, std::chrono::seconds(5));
//   clock.Advance(std::chrono::seconds(6));  // now the silent node is overdue
//
// Thread-safety: both implementations may be read and advanced from any thread.
#pragma once

#include <atomic>
#include <chrono>

namespace mtps {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

// Starts at an arbitrary fixed point and moves only when told.
class ManualClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(std::chrono::nanoseconds(now_ns_.load())); }
  void Advance(std::chrono::nanoseconds d) { now_ns_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_ns_{int64_t{1000} * 1000 * 1000 * 1000};
};

}  // namespace mtps
