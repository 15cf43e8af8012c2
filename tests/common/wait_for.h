// WaitFor: polls a condition until it holds or a deadline passes — the one bounded wait
// that tests use instead of sleeps (a process's log line, a file, a port that answers).
//
//   ASSERT_TRUE(mtps::testing::WaitFor([&] { return HasCheckpoint(); }, std::chrono::seconds(60)))
//       << logs;
//
// The condition runs on the calling thread, first at once and then every `poll`; it may be
// called once more after the deadline (a condition that became true just then still counts).
#pragma once

#include <chrono>
#include <thread>

namespace mtps::testing {

template <typename Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds limit,
             std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace mtps::testing
