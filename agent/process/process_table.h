// ProcessTable: the sample stage's memory of every process it has seen.
//
// The problem it solves: a sample is taken in the kernel but symbolized later
// in user space, by which time the process may have exec'd or exited. So the
// sample stage attaches a ProcessSnapshot to each sample *as it drains it*,
// reading /proc/PID/maps the first time a process shows up. Exec events (which
// arrive on the same ordered ring as samples) mark the snapshot stale; exit
// events drop the entry, and samples in flight keep their snapshot alive.
// If a process is already gone when first seen, the exec event's hint still
// places frames in its executable.
//
// Threads: the drain thread calls snapshot_for/on_exec/on_exit; the pipeline
// thread calls refresh() after an address misses. One mutex guards the table.
// Bound: at most `max_processes` entries; past that, the least recently used
// is dropped (its samples keep their snapshots).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/metrics.h"
#include "agent/model/types.h"
#include "common/clock.h"

namespace ember {

class ProcessTable {
 public:
  struct Options {
    std::string proc_root = "/proc";
    size_t max_processes = 65536;
    // A refresh after a miss re-reads /proc/PID/maps at most this often.
    uint64_t refresh_min_interval_ns = 1'000'000'000;
    // Drain-time re-reads on a miss start this far apart and double each
    // time a re-read does not cover the addresses, up to the refresh interval.
    uint64_t miss_reread_initial_ns = 2'000'000;
    // Tells whether the symbolizer already holds a file (by device, inode).
    // Files it does not know are opened when the snapshot is taken, so they
    // stay readable after the process exits. Null: never pin.
    std::function<bool(uint64_t dev, uint64_t ino)> file_known;
    size_t max_pinned_per_process = 64;
    // Pinned fds alive at once, across all snapshots (they live as long as a
    // sample or interval cache holds the snapshot).
    size_t max_pinned_total = 4096;
    // Distinct process roots (containers, chroots) held open at once.
    size_t max_roots = 1024;
    // Which readers must release a pin before it closes (PinConsumer bits).
    uint8_t pin_consumers = kPinSymbolizer;
    // Told of every snapshot read successfully and of every exit, in order
    // (the unwind-table loader). Called with the table's lock held: must
    // only queue work.
    std::function<void(std::shared_ptr<const ProcessSnapshot>)> on_snapshot;
    std::function<void(uint32_t pid)> on_exit;
  };

  ProcessTable(Options opts, const Clock& clock, Metrics& metrics);

  // Drain thread: the snapshot samples of `pid` taken now should use. If
  // some of `user_stack` lies in no mapping of the current snapshot (the
  // first one may predate the dynamic loader mapping libc), or the sample
  // carries a stack copy taken (at `copy_taken_ns`, CLOCK_MONOTONIC; 0: no
  // copy) after the snapshot was read, the maps are re-read at once while
  // the process still exists, with exponential backoff so stray addresses
  // cannot cause a storm of reads.
  std::shared_ptr<const ProcessSnapshot> snapshot_for(uint32_t pid,
                                                      const std::vector<uint64_t>& user_stack = {},
                                                      uint64_t copy_taken_ns = 0);
  void on_exec(const ExecEvent& e);
  void on_exit(const ExitEvent& e);

  // Pipeline thread: a newer snapshot after an address was not found in
  // `stale` (e.g. a library dlopen'ed since), or null when there is none.
  std::shared_ptr<const ProcessSnapshot> refresh(const ProcessSnapshot& stale);

  size_t size() const;
  // Before any snapshot is read (setup only).
  void set_pin_consumers(uint8_t consumers) { opts_.pin_consumers = consumers; }

 private:
  struct Entry {
    std::shared_ptr<const ProcessSnapshot> snap;
    bool stale = true;
    uint64_t generation = 0;
    std::optional<ExecHint> hint;
    std::shared_ptr<PinnedFile> exe_fd;  // until the maps were read once
    std::string exec_filename;
    // The process's root, opened at exec or at the first snapshot: a later
    // snapshot of a process already gone still finds its files.
    std::shared_ptr<const RootDir> root;
    uint64_t last_read_ns = 0;
    uint64_t last_used_ns = 0;
    uint64_t miss_backoff_ns = 0;  // 0: next miss may re-read at once
  };
  std::shared_ptr<const ProcessSnapshot> read(uint32_t pid, Entry& e);  // caller holds mu_
  void pin_unknown_files(ProcessSnapshot& s);
  void evict_if_needed();
  // /proc/PID/root, opened and shared with every process of the same root
  // (caller holds mu_). Null if the process is gone.
  std::shared_ptr<const RootDir> open_root(uint32_t pid);

  Options opts_;
  const Clock& clock_;
  Counter& snapshots_read_;
  Counter& snapshots_failed_;
  Counter& pinned_;
  Counter& pin_budget_exhausted_;
  std::shared_ptr<std::atomic<size_t>> pinned_live_ = std::make_shared<std::atomic<size_t>>(0);
  Counter& copy_rereads_;
  Counter& miss_rereads_;
  Counter& evicted_;
  Counter& tracked_;
  Counter& roots_not_held_;
  Counter& mappings_dropped_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Entry> table_;
  // Open roots by (device, inode): one descriptor per distinct root. Entries
  // whose last holder is gone are swept when the map doubles.
  std::map<std::pair<uint64_t, uint64_t>, std::weak_ptr<const RootDir>> roots_;
  size_t roots_sweep_at_ = 64;
};

}  // namespace ember
