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

  // What one map may hold. A perf map is written by the workload, so any of
  // these can be hostile: ten million lines, or one name of megabytes.
  struct Limits {
    size_t max_entries = 1'000'000;
    size_t max_bytes = 64u << 20;  // regions, names and map nodes
    size_t max_name = 1024;        // longer names are cut, with "..."
  };

  // Parses the complete lines at the start of `text` and returns how many
  // bytes they span (a trailing partial line is left for the next call).
  // Malformed lines are skipped and counted. Once a line would take the
  // map past its entries or bytes, the map is full: parsing stops before
  // that line (full() turns true), and later lines are never read.
  size_t append(std::string_view text, const Limits& limits);
  size_t append(std::string_view text, size_t max_entries) {
    Limits l;
    l.max_entries = max_entries;
    return append(text, l);
  }

  // The region containing `addr`: its start and entry, or null.
  const Entry* lookup(uint64_t addr, uint64_t* start = nullptr) const;

  size_t size() const { return regions_.size(); }
  size_t malformed() const { return malformed_; }
  size_t truncated() const { return truncated_; }
  bool full() const { return full_; }
  // Reads no further: the file is not a perf map (a "line" of megabytes).
  void set_full() { full_ = true; }
  size_t memory_bytes() const { return bytes_; }

 private:
  void insert(uint64_t start, uint64_t end, std::string name);
  std::map<uint64_t, Entry> regions_;  // start -> entry
  size_t malformed_ = 0, truncated_ = 0, bytes_ = 0;
  bool full_ = false;
};

// PerfMapCache: the perf maps of live processes, owned by the Symbolizer.
// Key: pid, checked against the file's device and inode (a new process with
// a recycled pid writes a new file). Each map is read incrementally: a miss
// re-reads only what was appended since, at most once per `recheck_ns`.
// Bounds: `max_processes` maps, least recently used evicted first, and
// `max_total_bytes` across them (the least recently used go first, never the
// map being read); each map holds at most `limits` (a full map is no longer
// read, until its file is replaced); one refresh parses at most
// `max_read_per_refresh` bytes, the rest on later misses, so a huge map never
// holds the symbolizer's lock for long.
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
    PerfMap::Limits limits;
    size_t max_total_bytes = 256u << 20;
    size_t max_read_per_refresh = 16u << 20;
    uint64_t recheck_ns = 100'000'000;
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, reads = 0, evictions = 0;
    uint64_t filled = 0;  // maps that reached their limits
    uint64_t evicted_for_bytes = 0;
    uint64_t malformed = 0, truncated = 0;  // lines, since the start
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
  void enforce_total_bytes(pid_t keep);
  std::string path_for(pid_t pid) const;

  Options opts_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<pid_t, State> procs_;
  std::list<pid_t> lru_;  // most recent first
  size_t total_bytes_ = 0;  // sum of the maps' memory_bytes()
  Stats stats_;
};

}  // namespace ember
