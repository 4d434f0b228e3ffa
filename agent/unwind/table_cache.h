// UnwindTableCache: the one owner of built unwind tables.
//
// Key: the build-id when the file has one (the same library in many
// containers is built once), else device/inode/size/mtime. Bound: the total
// bytes of tables held; the least recently used go first. Tables loaded into
// BPF keep their own reference, so eviction here only costs a rebuild if
// user space needs the table again.
//
// A table built while its process's root was gone may lack the debug file's
// .debug_frame (debug_file.h): it is used, but the next get() through a
// reachable root builds it again and replaces it.
//
// Thread-safe. A table being built by one thread is waited for, not built
// twice.
#pragma once

#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/unwind/unwind_table.h"
#include "common/unique_fd.h"
#include "symbolizer/process_maps.h"

namespace ember::unwind {

class UnwindTableCache {
 public:
  struct Options {
    size_t max_bytes = size_t(256) << 20;
    std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0, failures = 0;
    uint64_t debug_deferred = 0, debug_retries = 0;  // see above
    size_t entries = 0, bytes = 0;
    double build_seconds = 0;  // total time spent building tables
  };

  explicit UnwindTableCache(Options opts) : opts_(std::move(opts)) {}

  // A table and the key it is cached under (the same binary always has the
  // same key, even across evictions).
  struct Ref {
    std::shared_ptr<const UnwindTable> table;
    std::string key;
    explicit operator bool() const { return table != nullptr; }
  };

  // The table of an open ELF file; `debug_root` prefixes debug-file lookups
  // (the process's root). Null if the file is not a usable ELF.
  Ref get(UniqueFd fd, const std::string& path, const std::string& debug_root);
  // The table of the file mapped at `m` in `proc`.
  Ref for_mapping(const ProcessSnapshot& proc, const MapEntry& m);
  // The vDSO's table: every process maps the same image the kernel gave us.
  std::shared_ptr<const UnwindTable> vdso();

  Stats stats() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const UnwindTable> table;
    size_t bytes = 0;
  };
  std::shared_ptr<const UnwindTable> lookup_locked(const std::string& key);
  void insert_locked(const std::string& key, std::shared_ptr<const UnwindTable> t);
  void erase_locked(const std::string& key);

  Options opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::unordered_map<std::string, std::string> identity_to_key_;
  std::unordered_set<std::string> building_;
  Stats stats_;
  std::once_flag vdso_once_;
  std::shared_ptr<const UnwindTable> vdso_;
};

}  // namespace ember::unwind
