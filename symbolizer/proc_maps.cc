#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>

#include "common/files.h"
#include "common/in_root.h"
#include "symbolizer/process_maps.h"

namespace ember {
namespace {

constexpr std::string_view kDeleted = " (deleted)";

bool parse_hex(std::string_view& s, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    v = (v << 4) | uint64_t(d);
  }
  if (i == 0) return false;
  *out = v;
  s.remove_prefix(i);
  return true;
}

bool parse_dec(std::string_view& s, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) v = v * 10 + uint64_t(s[i] - '0');
  if (i == 0) return false;
  *out = v;
  s.remove_prefix(i);
  return true;
}

bool eat(std::string_view& s, char c) {
  if (s.empty() || s[0] != c) return false;
  s.remove_prefix(1);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t')) s.remove_prefix(1);
}

bool parse_line(std::string_view s, MapEntry* e) {
  uint64_t v;
  if (!parse_hex(s, &e->start) || !eat(s, '-') || !parse_hex(s, &e->end) || !eat(s, ' '))
    return false;
  if (s.size() < 5) return false;
  e->readable = s[0] == 'r';
  e->writable = s[1] == 'w';
  e->executable = s[2] == 'x';
  e->shared = s[3] == 's';
  s.remove_prefix(4);
  if (!eat(s, ' ') || !parse_hex(s, &e->offset) || !eat(s, ' ')) return false;
  if (!parse_hex(s, &v) || !eat(s, ':')) return false;
  e->dev_major = uint32_t(v);
  if (!parse_hex(s, &v) || !eat(s, ' ')) return false;
  e->dev_minor = uint32_t(v);
  if (!parse_dec(s, &e->inode)) return false;
  skip_spaces(s);
  e->path.assign(s.data(), s.size());
  return true;
}

}  // namespace

bool MapEntry::deleted() const {
  return path.size() > kDeleted.size() &&
         std::string_view(path).substr(path.size() - kDeleted.size()) == kDeleted;
}

std::string_view MapEntry::clean_path() const {
  std::string_view p(path);
  if (deleted()) p.remove_suffix(kDeleted.size());
  return p;
}

dev_t MapEntry::dev() const { return makedev(dev_major, dev_minor); }

Result<std::vector<MapEntry>> parse_proc_maps(std::string_view text) {
  std::vector<MapEntry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    MapEntry e;
    if (!parse_line(line, &e))
      return Errorf("maps line %zu is malformed: '%.*s'", line_no, int(line.size()), line.data());
    out.push_back(std::move(e));
  }
  return out;
}

const MapEntry* ProcessSnapshot::find(uint64_t addr) const {
  auto it = std::upper_bound(mappings.begin(), mappings.end(), addr,
                             [](uint64_t a, const MapEntry& m) { return a < m.start; });
  if (it == mappings.begin()) return nullptr;
  --it;
  return addr < it->end ? &*it : nullptr;
}

UniqueFd ProcessSnapshot::open_by_path(const MapEntry& m) const {
  return open_in_root(root_path(), m.clean_path());
}

std::string ProcessSnapshot::map_files_path(const MapEntry& m) const {
  char range[64];
  std::snprintf(range, sizeof(range), "%llx-%llx", (unsigned long long)m.start,
                (unsigned long long)m.end);
  return proc_root + "/" + std::to_string(pid) + "/map_files/" + range;
}

PinnedFile* pin_of(const ProcessSnapshot& proc, const MapEntry& m) {
  size_t idx = size_t(&m - proc.mappings.data());
  return idx < proc.pinned.size() ? proc.pinned[idx].get() : nullptr;
}

UniqueFd open_mapped_file(const ProcessSnapshot& proc, const MapEntry& m) {
  UniqueFd fd;
  if (PinnedFile* pin = pin_of(proc, m); pin && pin->fd() >= 0)
    fd.reset(::fcntl(pin->fd(), F_DUPFD_CLOEXEC, 0));
  if (!fd.valid()) fd = open_regular_file(proc.map_files_path(m));
  if (!fd.valid()) fd = proc.open_by_path(m);
  bool in_our_root = false;
  if (!fd.valid() && !m.deleted()) {
    fd = open_regular_file(std::string(m.clean_path()));  // checked below: the very file
    in_our_root = true;
  }
  if (fd.valid()) {
    // A file replaced since it was mapped has a new inode: never read the
    // wrong binary. A path from a process's maps opened in our own root must
    // be the very file (device and inode): a workload names the path, and
    // an inode number alone is easy to meet on another filesystem.
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || (m.inode != 0 && st.st_ino != m.inode) ||
        (in_our_root && st.st_dev != m.dev()))
      fd.reset();
  }
  return fd;
}

RootDir::RootDir(UniqueFd fd, uint64_t dev, uint64_t ino)
    : fd_(std::move(fd)), dev_(dev), ino_(ino), path_("/proc/self/fd/" + std::to_string(fd_.get())) {}

std::shared_ptr<const RootDir> RootDir::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return nullptr;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return nullptr;
  return std::shared_ptr<const RootDir>(
      new RootDir(std::move(fd), uint64_t(st.st_dev), uint64_t(st.st_ino)));
}

std::string ProcessSnapshot::root_path() const {
  if (root) return root->path();
  return proc_root + "/" + std::to_string(pid) + "/root";
}

Result<std::shared_ptr<ProcessSnapshot>> read_process_snapshot(const std::string& proc_root,
                                                              pid_t pid) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  auto text = read_file(dir + "/maps");
  if (!text) return text.error();
  auto entries = parse_proc_maps(*text);
  if (!entries) return entries.error();

  auto snap = std::make_shared<ProcessSnapshot>();
  snap->pid = pid;
  snap->maps_ok = true;
  snap->proc_root = proc_root;
  for (auto& e : *entries) {
    if (e.executable) snap->mappings.push_back(std::move(e));
  }
  if (snap->mappings.size() > kMaxSnapshotMappings) {
    // Files name code through their symbols and debug files; anonymous
    // regions only through a perf map. Keep the files.
    std::stable_partition(snap->mappings.begin(), snap->mappings.end(),
                          [](const MapEntry& m) { return m.is_file() || m.path == "[vdso]"; });
    snap->mappings_dropped = snap->mappings.size() - kMaxSnapshotMappings;
    snap->mappings.resize(kMaxSnapshotMappings);
  }
  // /proc/PID/maps is sorted already; keep the invariant explicit for find().
  std::sort(snap->mappings.begin(), snap->mappings.end(),
            [](const MapEntry& a, const MapEntry& b) { return a.start < b.start; });

  char buf[4096];
  ssize_t n = ::readlink((dir + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n > 0) snap->exe_path.assign(buf, size_t(n));
  if (auto comm = read_file(dir + "/comm"); comm.ok()) {
    snap->comm = *comm;
    while (!snap->comm.empty() && snap->comm.back() == '\n') snap->comm.pop_back();
  }
  if (auto cg = read_file(dir + "/cgroup"); cg.ok()) snap->cgroup_text = std::move(*cg);
  if (auto cmd = read_file(dir + "/cmdline"); cmd.ok()) snap->cmdline_raw = std::move(*cmd);
  return snap;
}

}  // namespace ember
