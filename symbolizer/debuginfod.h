// DebuginfodClient: fetches the debug file of a build-id from debuginfod
// servers (elfutils' libdebuginfod) into a local cache directory, for
// binaries whose debug info is not on the host. Off unless configured.
//
// libdebuginfod reads its server list, cache path and timeout from the
// environment at every query, so create() sets DEBUGINFOD_URLS,
// DEBUGINFOD_CACHE_PATH and DEBUGINFOD_TIMEOUT: create the client during
// start-up, before other threads run.
//
// Cache: the files live in `cache_dir` (libdebuginfod's own cache, cleaned by
// its own max-age rule). Misses are remembered here, by build-id, for
// `retry_after` (at most `max_misses` of them, the oldest forgotten first), so
// a build-id no server has costs one round trip per interval, not one per
// binary load.
//
// Threading: any thread; one query at a time (the client handle is not
// thread-safe), under a mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

struct debuginfod_client;

namespace ember {

class DebuginfodClient {
 public:
  struct Options {
    std::vector<std::string> urls;  // e.g. https://debuginfod.debian.net
    std::string cache_dir;          // required
    int timeout_s = 10;             // per server, for the transfer to start
    uint64_t retry_after_ns = 600'000'000'000ull;
    size_t max_misses = 4096;
  };
  struct Stats {
    uint64_t fetched = 0;    // found (downloaded now or in the cache dir)
    uint64_t not_found = 0;  // no server had it
    uint64_t skipped = 0;    // a recent miss, not asked again
  };

  static Result<std::unique_ptr<DebuginfodClient>> create(Options opts);
  ~DebuginfodClient();
  DebuginfodClient(const DebuginfodClient&) = delete;
  DebuginfodClient& operator=(const DebuginfodClient&) = delete;

  // Path of the debug file for `build_id` (hex) in the cache dir, or "" when
  // no server has it. `now_ns` is the caller's clock (for the miss memory).
  std::string find_debuginfo(const std::string& build_id, uint64_t now_ns);

  Stats stats() const;
  const Options& options() const { return opts_; }

 private:
  DebuginfodClient(Options opts, debuginfod_client* client);
  Options opts_;
  mutable std::mutex mu_;
  debuginfod_client* client_;
  std::unordered_map<std::string, uint64_t> misses_;  // build-id -> when
  std::deque<std::string> miss_order_;                // oldest first
  Stats stats_;
};

}  // namespace ember
