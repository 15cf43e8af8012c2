// WorkerThreads<Task>: a fixed set of threads that run queued tasks of one type, in order
// of arrival. The RPC server runs its handlers on one.
//
//   WorkerThreads<Request> workers(4, "rpc", [](Request& r) { Serve(r); });
//   workers.Submit(std::move(request));   // any thread
//   workers.Stop();                       // drops what is still queued, joins
//
// Thread-safe. Tasks are stored by value (no std::function per task).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mtps {

template <typename Task>
class WorkerThreads {
 public:
  WorkerThreads(int threads, std::function<void(Task&)> run) : run_(std::move(run)) {
    if (threads < 1) threads = 1;
    threads_.reserve(threads);
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerThreads() { Stop(); }
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;

  // Returns false (dropping `task`) after Stop().
  bool Submit(Task task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return false;
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
    return true;
  }

  // Drops queued tasks, waits for running ones to return, joins. Idempotent.
  void Stop() {
    std::deque<Task> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    ready_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Task task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      run_(task);
    }
  }

  const std::function<void(Task&)> run_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Task> queue_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;   // GUARDED_BY(mutex_)
  std::vector<std::thread> threads_;
};

}  // namespace mtps
