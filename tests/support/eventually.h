// Polling for the tests: waits for a condition another process or thread
// brings about, instead of sleeping a fixed time that a busy or quiet
// machine can miss.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace ember::testing {

// Polls `cond` every `every` until it holds or `timeout` passes; true if it
// held.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10000),
                       std::chrono::milliseconds every = std::chrono::milliseconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(every);
  }
  return cond();
}

}  // namespace ember::testing
