#include "symbolizer/debuginfod.h"

#include <elfutils/debuginfod.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace ember {

Result<std::unique_ptr<DebuginfodClient>> DebuginfodClient::create(Options opts) {
  if (opts.urls.empty()) return Errorf("debuginfod: no server URLs");
  if (opts.cache_dir.empty()) return Errorf("debuginfod: no cache directory");
  if (::mkdir(opts.cache_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Errorf("debuginfod: cannot create cache directory %s: %s", opts.cache_dir.c_str(),
                  std::strerror(errno));
  std::string urls;
  for (const auto& u : opts.urls) urls += (urls.empty() ? "" : " ") + u;
  // libdebuginfod takes its settings from the environment, read at each
  // query; we own them from here on.
  ::setenv("DEBUGINFOD_URLS", urls.c_str(), 1);
  ::setenv("DEBUGINFOD_CACHE_PATH", opts.cache_dir.c_str(), 1);
  ::setenv("DEBUGINFOD_TIMEOUT", std::to_string(opts.timeout_s).c_str(), 1);
  ::unsetenv("DEBUGINFOD_PROGRESS");
  debuginfod_client* c = debuginfod_begin();
  if (!c) return Errorf("debuginfod: cannot start the client");
  return std::unique_ptr<DebuginfodClient>(new DebuginfodClient(std::move(opts), c));
}

DebuginfodClient::DebuginfodClient(Options opts, debuginfod_client* client)
    : opts_(std::move(opts)), client_(client) {}

DebuginfodClient::~DebuginfodClient() { debuginfod_end(client_); }

std::string DebuginfodClient::find_debuginfo(const std::string& build_id, uint64_t now_ns) {
  if (build_id.empty()) return "";
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = misses_.find(build_id); it != misses_.end()) {
    if (now_ns - it->second < opts_.retry_after_ns) {
      ++stats_.skipped;
      return "";
    }
    misses_.erase(it);
  }
  char* path = nullptr;
  // Length 0: the build-id is given as a hex string.
  int fd = debuginfod_find_debuginfo(
      client_, reinterpret_cast<const unsigned char*>(build_id.c_str()), 0, &path);
  if (fd >= 0) {
    ::close(fd);
    std::string out = path ? path : "";
    std::free(path);
    ++stats_.fetched;
    return out;
  }
  EMBER_DEBUG("debuginfod: no debug file for %s: %s", build_id.c_str(), std::strerror(-fd));
  ++stats_.not_found;
  misses_[build_id] = now_ns;
  miss_order_.push_back(build_id);
  while (miss_order_.size() > opts_.max_misses) {
    // An id may be queued twice (missed, expired, missed again); forgetting
    // it early only costs one more query.
    misses_.erase(miss_order_.front());
    miss_order_.pop_front();
  }
  return "";
}

DebuginfodClient::Stats DebuginfodClient::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace ember
