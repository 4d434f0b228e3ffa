// Names the calling thread (at most 15 characters), so `top -H`, perf and
// /proc/PID/task/*/comm say which of the agent's threads uses the CPU.
#pragma once

#include <pthread.h>

namespace ember {

inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace ember
