#include "common/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

namespace ember {
namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's MAXSYMLINKS
constexpr int kOpenat2Retries = 8;
constexpr size_t kMaxDepth = 256;  // directories the walk holds open at once

std::atomic<uint64_t> g_counts[kInRootResultCount];

UniqueFd finish(UniqueFd fd, InRootResult r, InRootResult* out) {
  g_counts[size_t(r)].fetch_add(1, std::memory_order_relaxed);
  if (out) *out = r;
  return fd;
}

InRootResult from_errno(int e) {
  switch (e) {
    case ENOENT:
    case ENOTDIR:
    case EACCES:
    case ESRCH:  // the root was /proc/PID/root of a process now gone
      return InRootResult::kMissing;
    default:  // ELOOP (too many links, a magic link), ENAMETOOLONG, EXDEV, ...
      return InRootResult::kRefused;
  }
}

// `fd` was opened with O_PATH; open it for reading if it is a regular file.
// Reopening through /proc/self/fd opens the very inode the O_PATH descriptor
// holds, with no second path walk, and nothing was opened for reading before
// the type check (opening a device can have side effects).
UniqueFd reopen_regular(const UniqueFd& fd, InRootResult* r) {
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    *r = InRootResult::kRefused;
    return UniqueFd();
  }
  std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  UniqueFd out(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!out.valid()) *r = from_errno(errno);
  return out;
}

long sys_openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

// Strips the leading slashes: openat2 with RESOLVE_BENEATH refuses an
// absolute path, and both modes take the path from the root anyway.
std::string relative(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return std::string(path);
}

// openat2: beneath the root first, so that a path that would leave it is
// seen (EXDEV) and counted; then inside it, as the workload resolves it.
// Sets *r to kKeptInRoot for a path that left, whether or not a file was
// there to open.
// Returns false (and touches nothing) if the kernel lacks openat2.
bool open_with_openat2(int root_fd, const std::string& rel, UniqueFd* out, InRootResult* r) {
  constexpr uint64_t kFlags = O_PATH | O_CLOEXEC;
  if (rel.empty()) {  // the root itself: a directory
    *r = InRootResult::kRefused;
    return true;
  }
  auto attempt = [&](uint64_t resolve) {
    long fd = -1;
    for (int i = 0; i < kOpenat2Retries; ++i) {
      fd = sys_openat2(root_fd, rel.c_str(), kFlags, resolve | RESOLVE_NO_MAGICLINKS);
      if (fd >= 0 || errno != EAGAIN) break;  // EAGAIN: a rename or mount raced a ".."
    }
    return fd;
  };
  long fd = attempt(RESOLVE_BENEATH);
  *r = InRootResult::kOpened;
  if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) return false;
  bool left = false;
  if (fd < 0 && errno == EXDEV) {
    left = true;
    fd = attempt(RESOLVE_IN_ROOT);
  }
  if (fd < 0) {
    *r = from_errno(errno);
  } else {
    UniqueFd path_fd{static_cast<int>(fd)};
    *out = reopen_regular(path_fd, r);  // sets *r only on failure
  }
  if (left) *r = InRootResult::kKeptInRoot;
  return true;
}

// The walk: see the header. `dirs` holds the directories from the root
// down to the current one (the root itself is not in it).
UniqueFd walk(int root_fd, std::string_view path, InRootResult* r, bool* left) {
  *r = InRootResult::kOpened;
  std::vector<UniqueFd> dirs;
  auto cur = [&] { return dirs.empty() ? root_fd : dirs.back().get(); };
  std::string todo = relative(path);
  int links = 0;
  size_t at = 0;
  while (at < todo.size()) {
    size_t slash = todo.find('/', at);
    size_t end = slash == std::string::npos ? todo.size() : slash;
    std::string name = todo.substr(at, end - at);
    at = slash == std::string::npos ? todo.size() : slash + 1;
    while (at < todo.size() && todo[at] == '/') ++at;
    const bool last = at >= todo.size();
    if (name.empty() || name == ".") {
      if (last) break;
      continue;
    }
    if (name == "..") {
      if (dirs.empty()) *left = true;  // above the root: stays at it
      else dirs.pop_back();
      if (last) break;
      continue;
    }
    UniqueFd fd(::openat(cur(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      *r = from_errno(errno);
      return UniqueFd();
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) {
      *r = InRootResult::kRefused;
      return UniqueFd();
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) {
        *r = InRootResult::kRefused;
        return UniqueFd();
      }
      char buf[PATH_MAX];
      ssize_t n = ::readlinkat(fd.get(), "", buf, sizeof(buf));
      if (n <= 0 || size_t(n) >= sizeof(buf)) {
        *r = InRootResult::kRefused;
        return UniqueFd();
      }
      std::string target(buf, size_t(n));
      if (target.front() == '/') {
        *left = true;  // the host would restart at its own root
        dirs.clear();
      }
      std::string rest = todo.substr(at);
      todo = relative(target) + (rest.empty() ? "" : "/" + rest);
      at = 0;
      if (todo.size() > 2 * PATH_MAX) {
        *r = InRootResult::kRefused;
        return UniqueFd();
      }
      continue;
    }
    if (last) return reopen_regular(fd, r);  // sets *r only on failure
    if (!S_ISDIR(st.st_mode)) {
      *r = InRootResult::kMissing;  // ENOTDIR
      return UniqueFd();
    }
    if (dirs.size() >= kMaxDepth) {  // each level holds a descriptor
      *r = InRootResult::kRefused;
      return UniqueFd();
    }
    dirs.push_back(std::move(fd));
  }
  *r = InRootResult::kRefused;  // the path named the root or a directory
  return UniqueFd();
}

UniqueFd open_by_walk(int root_fd, std::string_view path, InRootResult* r) {
  bool left = false;
  UniqueFd fd = walk(root_fd, path, r, &left);
  if (left) *r = InRootResult::kKeptInRoot;
  return fd;
}

}  // namespace

const char* in_root_result_name(InRootResult r) {
  switch (r) {
    case InRootResult::kOpened: return "opened";
    case InRootResult::kKeptInRoot: return "kept_in_root";
    case InRootResult::kMissing: return "missing";
    case InRootResult::kRefused: return "refused";
  }
  return "refused";
}

bool have_openat2() {
  static const bool have = [] {
    long fd = sys_openat2(AT_FDCWD, "/", O_PATH | O_CLOEXEC, RESOLVE_NO_MAGICLINKS);
    if (fd >= 0) ::close(int(fd));
    return fd >= 0;
  }();
  return have;
}

UniqueFd open_in_root(int root_fd, std::string_view path, InRootResult* result, InRootMode mode) {
  InRootResult r = InRootResult::kRefused;
  if (path.size() >= PATH_MAX || path.find('\0') != std::string_view::npos)
    return finish(UniqueFd(), InRootResult::kRefused, result);
  if (mode != InRootMode::kWalk && (mode == InRootMode::kOpenat2 || have_openat2())) {
    UniqueFd fd;
    if (open_with_openat2(root_fd, relative(path), &fd, &r)) return finish(std::move(fd), r, result);
    if (mode == InRootMode::kOpenat2) return finish(UniqueFd(), InRootResult::kRefused, result);
  }
  UniqueFd fd = open_by_walk(root_fd, path, &r);
  return finish(std::move(fd), r, result);
}

UniqueFd open_in_root(const std::string& root, std::string_view path, InRootResult* result,
                      InRootMode mode) {
  // Our own root: a path Ember built (a configured directory, a build-id).
  if (root.empty()) return open_regular_file(std::string(path), result);
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return finish(UniqueFd(), InRootResult::kMissing, result);
  return open_in_root(root_fd.get(), path, result, mode);
}

UniqueFd open_regular_file(const std::string& path, InRootResult* result) {
  InRootResult r = InRootResult::kOpened;
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  UniqueFd out;
  if (fd.valid()) out = reopen_regular(fd, &r);  // sets r only on failure
  else r = from_errno(errno);
  if (result) *result = r;
  return out;
}

uint64_t in_root_count(InRootResult r) {
  return g_counts[size_t(r)].load(std::memory_order_relaxed);
}

}  // namespace ember
