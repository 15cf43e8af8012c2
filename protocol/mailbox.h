// Mailbox<T>: a queue that many threads post to and one ZeroMQ I/O thread drains, with an
// eventfd that the I/O thread's zmq_poll watches so that a post wakes it.
//
//   Mailbox<Reply> outbox;                              // any thread: outbox.Post(reply)
//   // I/O thread, each turn of its loop:
//   long timeout = outbox.PrepareToWait() ? -1 : 0;   // 0: something is queued already
//   zmq_poll(/* ..., {nullptr, outbox.fd(), ZMQ_POLLIN} */, timeout);
//   if (fd_was_readable) outbox.ClearWakeup();
//   outbox.Drain(&batch);
//
// ZeroMQ sockets are not thread-safe, so everything another thread wants sent goes through
// here. Thread-safe. The eventfd is written only when the I/O thread has said it is about
// to block and nothing was queued, so a post to a busy I/O thread costs no syscall.
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
      items_.push_back(std::move(item));
      wake = std::exchange(waiting_, false);
    }
    if (wake) Wake();
    return true;
  }

  // I/O thread, right before it blocks: false if something is queued (do not block);
  // true means the next Post() will write the eventfd.
  bool PrepareToWait() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!items_.empty()) return false;
    waiting_ = true;
    return true;
  }

  // I/O thread, when the eventfd was readable: resets it.
  void ClearWakeup() {
    uint64_t count;
    while (read(fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
  }

  // Wakes the I/O thread without queuing anything (e.g. to make it see a stop flag).
  void Wake() {
    uint64_t one = 1;
    ssize_t n;
    do {
      n = write(fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }

  // I/O thread: moves every queued item to the end of `out` (which keeps its capacity).
  void Drain(std::vector<T>* out) {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting_ = false;
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
  bool waiting_ = false;  // GUARDED_BY(mutex_): the I/O thread may be blocked in poll
};

}  // namespace mtps
