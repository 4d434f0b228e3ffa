// BinaryCache: the one owner of parsed binaries.
//
// Key: the GNU build-id when the file has one, so the same library seen
// through many containers' roots is parsed once; otherwise the file identity
// (device, inode, size, mtime). Every identity seen for a file points at its
// entry, so later lookups never reopen the ELF.
//
// Bound: at most `max_entries` binaries and `max_bytes` of parsed tables
// (DWARF units parsed since count too: an entry's size is refreshed whenever
// it is used); the least recently used entry is evicted first. Evicting only drops the
// cache's reference: profiles that still point into a Binary keep it alive.
//
// A binary whose debug-file lookup was deferred (its process's root was gone,
// see debug_file.h) is cached, but not for good: the next get() through a
// reachable root parses it again and the result replaces it. So the first
// process to map a binary never decides its symbols for the agent's life.
//
// Thread-safe: one mutex; lookups are short.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "common/unique_fd.h"
#include "symbolizer/binary.h"

namespace ember {

struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};
struct FileIdentityHash {
  size_t operator()(const FileIdentity& f) const {
    size_t h = std::hash<uint64_t>()(f.dev);
    h = h * 1000003 ^ std::hash<uint64_t>()(f.ino);
    h = h * 1000003 ^ std::hash<uint64_t>()(f.size);
    return h * 1000003 ^ std::hash<int64_t>()(f.mtime_ns);
  }
};

class BinaryCache {
 public:
  struct Options {
    size_t max_entries = 4096;
    size_t max_bytes = size_t(512) << 20;
  };
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t errors = 0;
    uint64_t debug_deferred = 0;       // loads whose debug lookup was deferred
    uint64_t debug_retries = 0;        // deferred binaries parsed again
    uint64_t debug_retries_found = 0;  // ... that found their debug file then
    size_t entries = 0;
    size_t bytes = 0;
  };

  explicit BinaryCache(Options opts) : opts_(opts) {}

  // The binary behind an open file. On a miss the file is parsed; a file
  // that is not a usable ELF is remembered as such (by identity) so it is not
  // parsed again.
  Result<std::shared_ptr<const Binary>> get(UniqueFd fd, const std::string& name,
                                            const Binary::LoadOptions& opts = {});

  // A binary already cached under this device and inode, or null. Used for
  // processes that exited before their mappings could be read.
  std::shared_ptr<const Binary> find_by_inode(uint64_t dev, uint64_t ino);
  // True if this file was seen at all, including as "not a usable ELF".
  bool contains_inode(uint64_t dev, uint64_t ino) const;

  Stats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const Binary> binary;  // null for a negative entry
    std::string error;
    std::string build_id;
    std::vector<FileIdentity> ids;
    size_t bytes = 0;
  };
  using Iter = std::list<Entry>::iterator;

  // Parses a deferred binary again (outside the lock) and puts the result
  // in the entry that held `old`, if it is still there.
  Result<std::shared_ptr<const Binary>> retry_deferred(std::unique_ptr<ElfFile> elf,
                                                       const FileIdentity& id,
                                                       const std::shared_ptr<const Binary>& old,
                                                       const Binary::LoadOptions& opts);
  void touch(Iter it);                  // caller holds mu_
  void add_identity(Iter it, const FileIdentity& id);
  void evict_if_needed();

  Options opts_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<FileIdentity, Iter, FileIdentityHash> by_identity_;
  std::unordered_map<std::string, Iter> by_build_id_;
  std::unordered_map<uint64_t, Iter> by_inode_;  // key mixes dev and ino
  Stats stats_;
};

}  // namespace ember
