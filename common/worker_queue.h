// WorkerQueue<T>: one thread that handles queued items in order, for the
// exporters (each sink writes or encodes on its own thread so the pipeline
// thread never waits on a disk or a network).
//
// push() never blocks: past `max_items`, the oldest queued item is handed to
// `on_drop` (the owner counts what it held) and discarded. wait_idle() blocks
// until every item pushed so far has been handled, or until a deadline.
// The destructor handles what is still queued, then joins; an owner that
// must not wait (a shutdown deadline passed) calls discard() first.
//
// Threading: push(), wait_idle(), discard() and size() from any thread;
// `handle` and `on_drop` run on the worker thread (on_drop also on the
// pushing thread, for the item it displaces).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "common/thread_name.h"
#include <utility>

namespace ember {

template <typename T>
class WorkerQueue {
 public:
  using Handler = std::function<void(T&&)>;
  using Clock = std::chrono::steady_clock;

  // `name`: the thread's name (at most 15 characters).
  WorkerQueue(size_t max_items, Handler handle, Handler on_drop = nullptr,
              const char* name = "ember-worker")
      : max_items_(max_items ? max_items : 1),
        handle_(std::move(handle)),
        on_drop_(std::move(on_drop)),
        thread_([this, name] {
          name_this_thread(name);
          run();
        }) {}

  ~WorkerQueue() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  WorkerQueue(const WorkerQueue&) = delete;
  WorkerQueue& operator=(const WorkerQueue&) = delete;

  void push(T item) {
    std::optional<T> displaced;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= max_items_) {
        displaced = std::move(queue_.front());
        queue_.pop_front();
      }
      queue_.push_back(std::move(item));
    }
    cv_.notify_all();
    if (displaced && on_drop_) on_drop_(std::move(*displaced));
  }

  // True when everything pushed before the call has been handled; false if
  // `deadline` came first.
  bool wait_idle(std::optional<Clock::time_point> deadline = std::nullopt) {
    std::unique_lock<std::mutex> lock(mu_);
    auto idle = [this] { return queue_.empty() && !busy_; };
    if (!deadline) {
      cv_.wait(lock, idle);
      return true;
    }
    return cv_.wait_until(lock, *deadline, idle);
  }

  // Hands every queued (not yet started) item to on_drop instead of handle.
  void discard() {
    std::deque<T> gone;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gone.swap(queue_);
    }
    cv_.notify_all();
    if (on_drop_)
      for (auto& item : gone) on_drop_(std::move(item));
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size() + (busy_ ? 1 : 0);
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      T item = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      handle_(std::move(item));
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  const size_t max_items_;
  const Handler handle_;
  const Handler on_drop_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace ember
