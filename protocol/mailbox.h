// Mailbox<T>: a queue that many threads post to and one ZeroMQ I/O thread drains, with an
// eventfd that the I/O thread's zmq_poll watches so that a post wakes it.
//
//   Mailbox<Reply> outbox;                              // I/O thread polls outbox.fd()
//   outbox.Post(std::move(reply));                      // any thread
//   std::vector<Reply> batch; outbox.Drain(&batch);     // I/O thread, when fd() is readable
//
// ZeroMQ sockets are not thread-safe, so everything another thread wants sent goes through
// here. Thread-safe. The eventfd is written only when the queue turns non-empty, so a burst
// of posts costs one syscall.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include <glog/logging.h>

namespace mtps {

template <typename T>
class Mailbox {
 public:
  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    PCHECK(fd_ >= 0) << "eventfd";
  }
  ~Mailbox() { close(fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Queues `item` and wakes the I/O thread. Once closed, returns false and leaves `item`
  // untouched, so the caller can still fail it.
  bool Post(T&& item) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return false;
      wake = items_.empty();
      items_.push_back(std::move(item));
    }
    if (wake) Wake();
    return true;
  }

  // Wakes the I/O thread without queuing anything (e.g. to make it see a stop flag).
  void Wake() {
    uint64_t one = 1;
    ssize_t n;
    do {
      n = write(fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }

  // Moves every queued item to the end of `out` (which keeps its capacity between calls).
  void Drain(std::vector<T>* out) {
    uint64_t count;
    while (read(fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (out->empty()) {
      std::swap(*out, items_);
    } else {
      for (auto& item : items_) out->push_back(std::move(item));
      items_.clear();
    }
  }

  // Refuses later posts; returns what was still queued so the caller can fail it.
  std::vector<T> Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    return std::exchange(items_, {});
  }

  int fd() const { return fd_; }

 private:
  const int fd_;
  std::mutex mutex_;
  std::vector<T> items_;  // GUARDED_BY(mutex_)
  bool closed_ = false;   // GUARDED_BY(mutex_)
};

}  // namespace mtps
