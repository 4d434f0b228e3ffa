// JIT symbols from perf map files: /tmp/perf-<pid>.map, one line per piece
// of generated code, "START SIZE name" in hex, appended as code is compiled
// (V8 with --perf-basic-prof, Java's perf-map-agent, CPython 3.12 -X perf,
// .NET with DOTNET_PerfMapEnabled).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"

namespace ember {

// PerfMap: one process's JIT code regions, non-overlapping, by address. A
// line whose range overlaps older ones replaces them (the runtime reused that
// memory for new code); the file is append-only, so lines are fed in order.
class PerfMap {
 public:
  struct Entry {
    uint64_t end = 0;
    std::string name;
  };

  // Parses the complete lines at the start of `text` and returns how many
  // bytes they span (a trailing partial line is left for the next call).
  // Malformed lines are skipped and counted. At most `max_entries` regions
  // are kept; lines beyond that are counted as dropped.
  size_t append(std::string_view text, size_t max_entries);

  // The region containing `addr`: its start and entry, or null.
  const Entry* lookup(uint64_t addr, uint64_t* start = nullptr) const;

  size_t size() const { return regions_.size(); }
  size_t malformed() const { return malformed_; }
  size_t dropped() const { return dropped_; }
  size_t memory_bytes() const { return bytes_; }

 private:
  void insert(uint64_t start, uint64_t end, std::string name);
  std::map<uint64_t, Entry> regions_;  // start -> entry
  size_t malformed_ = 0, dropped_ = 0, bytes_ = 0;
};

// PerfMapCache: the perf maps of live processes, owned by the Symbolizer.
// Key: pid, checked against the file's device and inode (a new process with
// a recycled pid writes a new file). Each map is read incrementally: a miss
// re-reads only what was appended since, at most once per `recheck_ns`.
// Bound: `max_processes` maps, least recently used evicted first; each map
// keeps at most `max_entries` regions.
//
// The file is opened inside /proc/PID/root (common/in_root.h): a
// containerized process's own /tmp, where no symlink leads out of it. Its
// name has the pid the process has in its own namespace (the last NSpid of
// /proc/PID/status), since that is the name it writes.
//
// Threading: any thread; one mutex.
class PerfMapCache {
 public:
  struct Options {
    std::string proc_root = "/proc";
    size_t max_processes = 256;
    size_t max_entries = 1'000'000;
    uint64_t recheck_ns = 100'000'000;
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, reads = 0, evictions = 0;
    size_t processes = 0, entries = 0, bytes = 0;
  };

  PerfMapCache(Options opts, const Clock& clock) : opts_(std::move(opts)), clock_(clock) {}

  // The JIT symbol covering `addr` in process `pid`, or "" if none.
  std::string lookup(pid_t pid, uint64_t addr);
  // The process exited: its map is of no further use.
  void forget(pid_t pid);

  Stats stats() const;

 private:
  struct State {
    uint64_t dev = 0, ino = 0;
    uint64_t offset = 0;  // bytes of the file parsed so far
    uint64_t checked_ns = 0;
    bool checked = false;
    std::string path;  // inside the process's root; resolved once: the NSpid does not change
    PerfMap map;
    std::list<pid_t>::iterator lru;
  };
  void refresh(pid_t pid, State& st);
  std::string path_for(pid_t pid) const;

  Options opts_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<pid_t, State> procs_;
  std::list<pid_t> lru_;  // most recent first
  Stats stats_;
};

}  // namespace ember
