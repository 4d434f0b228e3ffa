// Opening a workload's files as the workload itself sees them, never as the
// host would.
//
// Ember runs as root in the host's mount namespace, and a workload names
// paths inside its own root: mapped files, debug links, build-id files, perf
// maps. Joining "/proc/PID/root" and such a path and calling open() is not
// safe. The kernel goes through the magic link for the first component only;
// an absolute symlink met later in the walk restarts at the *opener's* root,
// the host's, and ".." climbs out of the container as well. A container that
// made /tmp/perf-1.map a symlink to /etc/shadow would have Ember read the
// host's file and print its lines as symbol names.
//
// open_in_root() resolves every component inside the given root:
//   - openat2(2) with RESOLVE_IN_ROOT where the kernel has it (5.6+): an
//     absolute symlink or a ".." above the root stays at the root, as in a
//     chroot, and the kernel refuses (EAGAIN, retried) a walk that a
//     concurrent rename or mount could have moved out;
//   - otherwise a walk in user space, one component at a time with
//     O_PATH|O_NOFOLLOW, that reads each symlink itself, restarts an absolute
//     target at the root and keeps ".." at the root from going above it. It
//     never lets the kernel resolve a symlink or a "..": every directory it
//     holds was reached downwards from the root. Its one gap is a directory
//     renamed out of the root while the walk holds it, which needs a writer
//     outside the container; openat2 closes that too.
// Both follow at most 40 symlinks (the kernel's own limit), refuse paths over
// PATH_MAX (the walk also refuses more than 256 directories deep, each
// holding a descriptor), never follow magic links (/proc/self/...), and open
// only regular files, so that a FIFO or a device put in a file's place cannot
// block the agent or be opened at all.
//
// Every call is counted in process-wide counters, exported as
// ember_workload_paths_total{result} (agent/cli/session.cc).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace ember {

enum class InRootMode {
  kAuto,     // openat2 if the kernel has it, else the walk
  kOpenat2,  // openat2 only (fails with ENOSYS where absent)
  kWalk,     // the user-space walk only (for tests, and the fallback)
};

enum class InRootResult : uint8_t {
  kOpened,      // a regular file, reached without leaving the root
  kKeptInRoot,  // the path leads out of the root the host's way (an
                // absolute symlink or a ".." above the root): it was resolved
                // inside the root instead, and opened if a regular file is
                // there. What a hostile container's paths count as; so do
                // absolute symlinks of ordinary images.
  kMissing,     // no such file inside the root (or the root is gone)
  kRefused,     // not a regular file, a magic link, too many symlinks, too long
};
inline constexpr size_t kInRootResultCount = 4;
const char* in_root_result_name(InRootResult r);  // "opened", "kept_in_root", ...

// Opens `path` (absolute or relative, it makes no difference: it is taken
// from `root`) read-only inside the directory `root_fd` (an O_PATH or
// directory descriptor, e.g. of "/proc/PID/root"). Returns an invalid fd
// unless a regular file was opened; `result` (if given) says how it went.
UniqueFd open_in_root(int root_fd, std::string_view path, InRootResult* result = nullptr,
                      InRootMode mode = InRootMode::kAuto);

// The same, with the root named by a path: "" is the agent's own root (a
// plain open of a path Ember built itself, still regular files only, and not
// counted).
UniqueFd open_in_root(const std::string& root, std::string_view path,
                      InRootResult* result = nullptr, InRootMode mode = InRootMode::kAuto);

// Opens a path Ember trusts to name the right file (a magic link such as
// /proc/PID/map_files/..., or a path it built) read-only, but only if it is a
// regular file: the type is checked on an O_PATH descriptor before anything
// is opened for reading, so a device or FIFO is never opened. Not counted.
UniqueFd open_regular_file(const std::string& path, InRootResult* result = nullptr);

// How many calls with a workload's root ended each way, since the process
// started.
uint64_t in_root_count(InRootResult r);

// Whether this kernel has openat2 (probed once).
bool have_openat2();

}  // namespace ember
