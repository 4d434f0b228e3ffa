#include "symbolizer/perf_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

#include "common/files.h"
#include "common/in_root.h"
#include "common/unique_fd.h"

namespace ember {

namespace {

bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits off the next blank-delimited field of `line`.
std::string_view next_field(std::string_view* line) {
  size_t start = line->find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    *line = {};
    return {};
  }
  line->remove_prefix(start);
  size_t end = line->find_first_of(" \t");
  std::string_view f = line->substr(0, end);
  line->remove_prefix(end == std::string_view::npos ? line->size() : end);
  return f;
}

}  // namespace

size_t PerfMap::append(std::string_view text, size_t max_entries) {
  size_t consumed = 0;
  for (;;) {
    size_t nl = text.find('\n', consumed);
    if (nl == std::string_view::npos) break;
    std::string_view line = text.substr(consumed, nl - consumed);
    consumed = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    uint64_t start = 0, size = 0;
    std::string_view rest = line;
    if (!parse_hex(next_field(&rest), &start) || !parse_hex(next_field(&rest), &size) || size == 0 ||
        start + size < start) {
      ++malformed_;
      continue;
    }
    size_t name_at = rest.find_first_not_of(" \t");
    std::string_view name = name_at == std::string_view::npos ? std::string_view() : rest.substr(name_at);
    if (name.empty()) {
      ++malformed_;
      continue;
    }
    if (regions_.size() >= max_entries) {
      ++dropped_;
      continue;
    }
    insert(start, start + size, std::string(name));
  }
  return consumed;
}

void PerfMap::insert(uint64_t start, uint64_t end, std::string name) {
  // Per region: the map node, the entry and the name's heap block.
  constexpr size_t kNodeBytes = 64;
  auto it = regions_.lower_bound(start);
  // A region starting before us that reaches into [start, end): keep the part
  // before `start` (and any part after `end`, which still holds old code).
  if (it != regions_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > start) {
      if (prev->second.end > end) {
        Entry tail{prev->second.end, prev->second.name};
        bytes_ += kNodeBytes + tail.name.capacity();
        regions_.emplace(end, std::move(tail));
      }
      prev->second.end = start;
    }
  }
  // Regions starting inside [start, end) are replaced; one reaching past
  // `end` keeps its tail.
  while (it != regions_.end() && it->first < end) {
    if (it->second.end > end) {
      Entry tail{it->second.end, it->second.name};
      bytes_ += kNodeBytes + tail.name.capacity();
      bytes_ -= kNodeBytes + it->second.name.capacity();
      it = regions_.erase(it);
      regions_.emplace(end, std::move(tail));
      break;
    }
    bytes_ -= kNodeBytes + it->second.name.capacity();
    it = regions_.erase(it);
  }
  bytes_ += kNodeBytes + name.capacity();
  regions_.emplace(start, Entry{end, std::move(name)});
}

const PerfMap::Entry* PerfMap::lookup(uint64_t addr, uint64_t* start) const {
  auto it = regions_.upper_bound(addr);
  if (it == regions_.begin()) return nullptr;
  --it;
  if (addr >= it->second.end) return nullptr;
  if (start) *start = it->first;
  return &it->second;
}

std::string PerfMapCache::path_for(pid_t pid) const {
  std::string dir = opts_.proc_root + "/" + std::to_string(pid);
  // The innermost pid namespace's number is the one the process knows.
  pid_t ns_pid = pid;
  if (auto status = read_file(dir + "/status"); status.ok()) {
    size_t at = status->find("\nNSpid:");
    if (at != std::string::npos) {
      size_t eol = status->find('\n', at + 1);
      std::string_view line(status->data() + at + 7,
                            (eol == std::string::npos ? status->size() : eol) - at - 7);
      std::string_view last;
      for (std::string_view f; !(f = next_field(&line)).empty();) last = f;
      int v = 0;
      if (!last.empty() && std::from_chars(last.data(), last.data() + last.size(), v).ec == std::errc())
        ns_pid = v;
    }
  }
  return "/tmp/perf-" + std::to_string(ns_pid) + ".map";
}

void PerfMapCache::refresh(pid_t pid, State& st) {
  st.checked = true;
  st.checked_ns = clock_.monotonic_ns();
  if (st.path.empty()) st.path = path_for(pid);
  // Inside the process's root: the workload owns its /tmp, and a symlink
  // there must not lead to a host file (common/in_root.h).
  UniqueFd fd = open_in_root(opts_.proc_root + "/" + std::to_string(pid) + "/root", st.path);
  if (!fd.valid()) return;
  struct stat sb{};
  if (::fstat(fd.get(), &sb) != 0) return;
  if (uint64_t(sb.st_dev) != st.dev || uint64_t(sb.st_ino) != st.ino || uint64_t(sb.st_size) < st.offset) {
    // Another file (a recycled pid) or one rewritten from scratch.
    st.map = PerfMap();
    st.offset = 0;
    st.dev = sb.st_dev;
    st.ino = sb.st_ino;
  }
  if (uint64_t(sb.st_size) <= st.offset) return;
  ++stats_.reads;
  // Read what was appended, in bounded chunks; a partial last line is read
  // again next time.
  constexpr size_t kChunk = 4 << 20;
  std::string buf;
  while (st.offset + buf.size() < uint64_t(sb.st_size)) {
    size_t keep = buf.size();  // an unfinished line, starting at st.offset
    size_t want = size_t(std::min<uint64_t>(kChunk, uint64_t(sb.st_size) - st.offset - keep));
    buf.resize(keep + want);
    ssize_t n = ::pread(fd.get(), buf.data() + keep, want, off_t(st.offset + keep));
    if (n <= 0) {
      buf.resize(keep);
      break;
    }
    buf.resize(keep + size_t(n));
    size_t used = st.map.append(buf, opts_.max_entries);
    st.offset += used;
    buf.erase(0, used);
    if (size_t(n) < want) break;
    if (buf.size() >= kChunk) break;  // a "line" longer than a chunk: not a perf map
  }
}

std::string PerfMapCache::lookup(pid_t pid, uint64_t addr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = procs_.try_emplace(pid);
  State& st = it->second;
  if (inserted) {
    lru_.push_front(pid);
    st.lru = lru_.begin();
    while (procs_.size() > opts_.max_processes) {
      procs_.erase(lru_.back());
      lru_.pop_back();
      ++stats_.evictions;
    }
  } else {
    lru_.splice(lru_.begin(), lru_, st.lru);
  }
  const PerfMap::Entry* e = st.map.lookup(addr);
  if (!e && (!st.checked || clock_.monotonic_ns() - st.checked_ns >= opts_.recheck_ns)) {
    refresh(pid, st);
    e = st.map.lookup(addr);
  }
  if (!e) {
    ++stats_.misses;
    return "";
  }
  ++stats_.hits;
  return e->name;
}

void PerfMapCache::forget(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  lru_.erase(it->second.lru);
  procs_.erase(it);
}

PerfMapCache::Stats PerfMapCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.processes = procs_.size();
  for (const auto& [pid, st] : procs_) {
    s.entries += st.map.size();
    s.bytes += st.map.memory_bytes();
  }
  return s;
}

}  // namespace ember
