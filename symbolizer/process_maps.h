// A process's executable mappings, as read from /proc/PID/maps, plus what
// the exec tracepoint told us about it. These are the inputs for turning a
// user address into (file, offset).
#pragma once

#include <sys/types.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ember {

// One line of /proc/PID/maps.
struct MapEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // file offset of `start`
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool shared = false;
  std::string path;  // may be empty, "[vdso]", "[heap]", or end in " (deleted)"

  bool is_file() const { return inode != 0 && !path.empty() && path[0] == '/'; }
  bool deleted() const;
  // The path without a trailing " (deleted)".
  std::string_view clean_path() const;
  dev_t dev() const;
};

// Parses the whole text of a maps file. Malformed lines are an error naming
// the line number: the format is stable, so a parse error means a bug.
Result<std::vector<MapEntry>> parse_proc_maps(std::string_view text);

// What the exec tracepoint recorded about a process's executable.
struct ExecHint {
  dev_t dev = 0;  // user-space encoding (makedev)
  uint64_t inode = 0;
  uint64_t start_code = 0;  // executable text lies in [start_code, end_code)
  uint64_t end_code = 0;
  uint64_t entry = 0;  // AT_ENTRY: e_entry + load bias
};

// Who reads pinned files; a pin closes once every registered reader has
// cached the file.
enum PinConsumer : uint8_t { kPinSymbolizer = 1, kPinUnwinder = 2 };

// A mapped file held open so it can still be read after its process exits
// (or from another mount namespace). Only needed until its readers have
// parsed the file, so each reader releases it then; `live` counts open pins
// across all snapshots so their number can be bounded.
// Created on the drain thread; fd()/release() may run on any thread.
class PinnedFile {
 public:
  PinnedFile(UniqueFd fd, std::shared_ptr<std::atomic<size_t>> live,
             uint8_t consumers = kPinSymbolizer)
      : fd_(fd.release()), pending_(consumers), live_(std::move(live)) {
    if (live_) live_->fetch_add(1, std::memory_order_relaxed);
  }
  ~PinnedFile() { close_now(); }
  PinnedFile(const PinnedFile&) = delete;
  PinnedFile& operator=(const PinnedFile&) = delete;
  int fd() const { return fd_.load(std::memory_order_acquire); }
  // `consumer` has what it needed; the last one closes the file.
  void release(uint8_t consumer) {
    uint8_t left = uint8_t(pending_.fetch_and(uint8_t(~consumer), std::memory_order_acq_rel) & ~consumer);
    if (left == 0) close_now();
  }

 private:
  void close_now() {
    int fd = fd_.exchange(-1, std::memory_order_acq_rel);
    if (fd < 0) return;
    ::close(fd);
    if (live_) live_->fetch_sub(1, std::memory_order_relaxed);
  }
  std::atomic<int> fd_;
  std::atomic<uint8_t> pending_;
  std::shared_ptr<std::atomic<size_t>> live_;
};

// A process's root directory, held open (O_PATH) from the moment the process
// is first seen, so that files inside it (debug files, found by path) can
// still be opened after the process exits: /proc/PID/root vanishes with the
// process, this descriptor does not. One is shared by every process with the
// same root (ProcessTable interns them), so their number is the number of
// distinct roots (containers), not of processes.
class RootDir {
 public:
  // Opens `path` (e.g. "/proc/1234/root"); null if that fails.
  static std::shared_ptr<const RootDir> open(const std::string& path);
  int fd() const { return fd_.get(); }
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }
  // A path that names the directory through our descriptor:
  // "/proc/self/fd/N", to which paths inside the root are appended.
  const std::string& path() const { return path_; }

 private:
  RootDir(UniqueFd fd, uint64_t dev, uint64_t ino);
  UniqueFd fd_;
  uint64_t dev_ = 0, ino_ = 0;
  std::string path_;
};

// An immutable view of one process at one moment: its executable mappings,
// sorted by address. Shared by every sample taken while it was current.
struct ProcessSnapshot {
  pid_t pid = 0;
  uint64_t generation = 0;  // bumps on every exec the sample stage sees
  bool maps_ok = false;     // false when /proc/PID/maps could not be read
  std::string proc_root;    // e.g. "/proc"
  std::string exe_path;     // readlink of /proc/PID/exe, "" if unknown
  std::string comm;
  // /proc/PID/cgroup and /proc/PID/cmdline (NUL-separated) as read with the
  // maps, for the label stage: a process that exits before it is labeled
  // still gets its container and pod labels from these.
  std::string cgroup_text;
  std::string cmdline_raw;
  std::vector<MapEntry> mappings;  // executable mappings plus [vdso]
  // Executable mappings left out past kMaxSnapshotMappings (anonymous ones
  // first); an address in one is symbolized as unmapped.
  size_t mappings_dropped = 0;
  // Open handles to mapped files the symbolizer had not parsed yet when the
  // snapshot was taken (parallel to `mappings`; null where not needed). They
  // let a process that exits before symbolization still be symbolized, even
  // from another mount namespace; they close with the snapshot.
  std::vector<std::shared_ptr<PinnedFile>> pinned;
  std::optional<ExecHint> exec_hint;
  // The executable, opened at exec time, for when the maps could not be read
  // (the process was gone): with exec_hint it still places the exe's frames.
  std::shared_ptr<PinnedFile> exe_fd;
  // The process's root, held open (null if it could not be opened).
  std::shared_ptr<const RootDir> root;

  // Where paths inside the process's filesystem start: the held root, else
  // /proc/PID/root (gone once the process exits).
  std::string root_path() const;

  // The mapping containing `addr`, or null.
  const MapEntry* find(uint64_t addr) const;
  // Opens `m` by its path, resolved inside the process's root
  // (common/in_root.h): other mount namespaces work, and a symlink the
  // workload put at that path never leads to a host file.
  UniqueFd open_by_path(const MapEntry& m) const;
  // The map_files entry for `m`: opens the exact mapped file, even if deleted.
  std::string map_files_path(const MapEntry& m) const;
};

// Opens the file mapped at `m`, best source first: the pinned handle, then
// /proc/PID/map_files (exactly the mapped file, even deleted or in another
// mount namespace; needs CAP_SYS_ADMIN), then the path inside the process's
// root, then the path in our own namespace if it is the same inode. An
// invalid fd if none works.
UniqueFd open_mapped_file(const ProcessSnapshot& proc, const MapEntry& m);
// The pin of `m`, if any (for release once the file is cached).
PinnedFile* pin_of(const ProcessSnapshot& proc, const MapEntry& m);

// A process can map tens of thousands of executable regions (a hostile one,
// or a JIT making one mapping per function); a snapshot, copied with every
// re-read, keeps at most this many: file-backed ones first, then anonymous
// ones by address. Real processes have a few hundred.
constexpr size_t kMaxSnapshotMappings = 16384;

// Reads /proc/PID/maps (and exe, comm) under `proc_root` into a snapshot.
// Only executable mappings are kept, at most kMaxSnapshotMappings. Fails if
// the process is gone.
Result<std::shared_ptr<ProcessSnapshot>> read_process_snapshot(const std::string& proc_root,
                                                              pid_t pid);

}  // namespace ember
