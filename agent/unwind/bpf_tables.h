// BpfUnwindTables: publishes unwind tables to the BPF unwinder.
//
// Layout (ember_abi.h): rows packed 16384 to a 64 KiB page in one array,
// each binary's rows contiguous; one index entry per 64 KiB of a binary's
// text; rules deduplicated across binaries; per process, a sorted run of
// mapping entries published through the `unwind_procs` hash.
//
// Sharing and lifetime: a binary is loaded once, keyed by its table key
// (build-id, else file identity), and reference-counted by the processes that
// map it; when the last one exits its rows and index entries go back to the
// free lists. Freed ranges sit in quarantine for a second first, so a BPF walk
// that read the old mapping entry just before it was replaced never reads
// rows reused by another binary. Nothing is ever wiped globally.
//
// Retention: a binary no process maps any more stays loaded (its rows keep
// their place) while retained binaries take at most `retention` of the row
// memory; the least recently released go first beyond that, and all of them
// go when a new binary does not fit. Short-lived processes (shells,
// compilers, `sleep`) map the same few binaries again and again; without
// retention every run rewrote their rows into the maps.
//
// Bound: the map sizes, fixed at load from config. A binary that does not fit
// is counted and its mappings fall back to frame pointers.
//
// Threads: process_seen()/process_exited() may be called from any thread;
// they queue work for this class's own loader thread, which alone touches
// the maps and the allocators. Table builds happen there too, never on the
// drain thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "agent/unwind/table_cache.h"
#include "common/clock.h"

struct ember_row_page;
struct ember_unwind_row;
struct ember_text_page;
struct ember_unwind_rule;
struct ember_mapping;

namespace ember::unwind {

// Writes the unwind maps. The BPF implementation goes through bpf(2)
// syscalls (mapping the arrays instead would count all of their preallocated
// pages in our RSS); tests use an in-memory one. All calls come from the
// loader thread.
class UnwindMapWriter {
 public:
  virtual ~UnwindMapWriter() = default;
  virtual uint32_t row_pages() const = 0;
  virtual uint32_t index_entries() const = 0;
  virtual uint32_t rule_entries() const = 0;
  virtual uint32_t mapping_entries() const = 0;
  // Rows [first, first + n) (global row indexes).
  virtual bool write_rows(uint64_t first, const ember_unwind_row* rows, size_t n) = 0;
  virtual bool write_index(uint32_t first, const ember_text_page* entries, size_t n) = 0;
  virtual bool write_rule(uint32_t id, const ember_unwind_rule& rule) = 0;
  virtual bool write_mappings(uint32_t first, const ember_mapping* entries, size_t n) = 0;
  virtual bool set_process(uint32_t pid, uint32_t mapping_first, uint32_t mapping_count) = 0;
  virtual void delete_process(uint32_t pid) = 0;
};

// The writer for the real maps, by file descriptor (the sampler owns them).
struct UnwindMapFds {
  int rows = -1, index = -1, rules = -1, mappings = -1, procs = -1;
  uint32_t row_pages = 0, index_entries = 0, rule_entries = 0, mapping_entries = 0;
};
std::unique_ptr<UnwindMapWriter> make_bpf_map_writer(const UnwindMapFds& fds);

// First-fit allocator of [0, size) with coalescing frees and a quarantine.
class RangeAllocator {
 public:
  explicit RangeAllocator(uint64_t size);
  // Start of a free run of `n`, or -1.
  int64_t alloc(uint64_t n);
  // Returns [start, start+n) after `now_ns` passes `release_after_ns`.
  void free_later(uint64_t start, uint64_t n, uint64_t release_at_ns);
  void release_due(uint64_t now_ns);
  // When the next quarantined range is due (UINT64_MAX: none waits).
  uint64_t next_release_ns() const {
    return quarantine_.empty() ? UINT64_MAX : std::get<0>(quarantine_.front());
  }
  uint64_t used() const { return used_; }
  uint64_t size() const { return size_; }

 private:
  void free_now(uint64_t start, uint64_t n);
  uint64_t size_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_;  // start -> length
  std::deque<std::tuple<uint64_t, uint64_t, uint64_t>> quarantine_;  // (release_at, start, n)
};

class BpfUnwindTables {
 public:
  struct Stats {
    size_t binaries = 0, processes = 0;
    size_t retained = 0;  // of `binaries`, those no process maps
    uint64_t rows = 0, rows_capacity = 0;
    uint64_t index_entries = 0, rules = 0, mapping_entries = 0;
  };

  struct Options {
    // Share of the row memory that binaries no process maps may keep.
    double retention = 0.25;
  };

  BpfUnwindTables(std::unique_ptr<UnwindMapWriter> maps, UnwindTableCache& cache,
                  const Clock& clock, Metrics& metrics, Options opts);
  BpfUnwindTables(std::unique_ptr<UnwindMapWriter> maps, UnwindTableCache& cache,
                  const Clock& clock, Metrics& metrics)
      : BpfUnwindTables(std::move(maps), cache, clock, metrics, Options()) {}
  ~BpfUnwindTables();

  void start();
  // (Re)loads a process from a snapshot of its mappings.
  void process_seen(std::shared_ptr<const ProcessSnapshot> snap);
  void process_exited(uint32_t pid);
  // Loads every process under `proc_root` now running (at startup).
  void preload_all(const std::string& proc_root);
  // Blocks until everything queued so far is done (tests, shutdown).
  void flush();

  Stats stats() const;

 private:
  struct LoadedBinary {
    uint32_t refs = 0;  // processes whose mappings point at it; 0: retained
    uint64_t released_ns = 0;                // when refs last dropped to 0
    std::list<std::string>::iterator retained_at;  // valid while refs == 0
    uint32_t row_start = 0, row_count = 0;
    uint32_t index_base = 0, page_first = 0, page_count = 0;
    std::shared_ptr<const UnwindTable> table;  // for bias computations
  };
  struct LoadedProcess {
    uint32_t mapping_first = 0, mapping_count = 0;
    std::vector<std::string> binaries;
  };
  struct Work {
    uint32_t pid = 0;
    std::shared_ptr<const ProcessSnapshot> snap;  // null: the process exited
  };

  void run();
  void load_process(const ProcessSnapshot& snap);
  // True if newer work for `pid` (a later snapshot, or its exit) is queued:
  // the load in progress is stale. Takes mu_.
  bool superseded(uint32_t pid) const;
  void unload_process(uint32_t pid, bool delete_entry);
  // `loading`: keys the process being loaded holds so far.
  LoadedBinary* load_binary(const UnwindTableCache::Ref& ref, std::vector<std::string>* loading);
  void unref_binary(const std::string& key);
  // Frees the least recently released retained binary; false if none.
  bool evict_retained();
  // Retires a binary whose table the cache has since rebuilt (a debug lookup
  // deferred, then found): freed if retained, else renamed until released.
  void supersede(std::unordered_map<std::string, LoadedBinary>::iterator it,
                 std::vector<std::string>* loading);
  bool intern_rules(const UnwindTable& t, std::vector<uint16_t>* ids);
  void publish_stats();

  std::unique_ptr<UnwindMapWriter> maps_;
  UnwindTableCache& cache_;
  const Clock& clock_;

  // Loader thread only.
  RangeAllocator rows_;
  RangeAllocator index_;
  RangeAllocator mappings_;
  std::unordered_map<std::string, LoadedBinary> binaries_;
  uint64_t superseded_ = 0;  // renames made by supersede()
  std::list<std::string> retained_;  // keys with refs == 0, most recently released first
  uint64_t retained_rows_ = 0;
  uint64_t max_retained_rows_ = 0;
  std::unordered_map<uint32_t, LoadedProcess> processes_;
  // Rule bytes (as a string: GCC 12 warns falsely on vector<uint8_t> keys) -> global id.
  std::map<std::string, uint16_t> rule_ids_;
  uint32_t rules_used_ = 0;

  Counter& loads_;
  Counter& abandoned_;
  Counter& binary_loads_;
  Counter& binaries_reused_;
  Counter& retained_gauge_;
  Counter& binaries_gauge_;
  Counter& processes_gauge_;
  Counter& rows_gauge_;
  Counter& table_bytes_gauge_;
  Counter& no_room_;
  Counter& write_failures_;
  Counter& no_table_;
  Counter& too_many_mappings_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;
  // Work items in queue_ per pid: superseded() is a lookup, not a scan of a
  // queue an exec storm can make thousands long, once per binary loaded.
  std::unordered_map<uint32_t, uint32_t> queued_per_pid_;
  bool busy_ = false;
  bool idle_ = false;  // the loader waits for work (mu_): only then is it woken
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace ember::unwind
