#include "symbolizer/perf_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/files.h"
#include "common/in_root.h"
#include "common/log.h"
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

size_t PerfMap::append(std::string_view text, const Limits& limits) {
  // Per region: the map node, the entry and the name's heap block.
  constexpr size_t kNodeBytes = 64;
  size_t consumed = 0;
  while (!full_) {
    size_t nl = text.find('\n', consumed);
    if (nl == std::string_view::npos) break;
    std::string_view line = text.substr(consumed, nl - consumed);
    const size_t next = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      consumed = next;
      continue;
    }
    uint64_t start = 0, size = 0;
    std::string_view rest = line;
    if (!parse_hex(next_field(&rest), &start) || !parse_hex(next_field(&rest), &size) || size == 0 ||
        start + size < start) {
      ++malformed_;
      consumed = next;
      continue;
    }
    size_t name_at = rest.find_first_not_of(" \t");
    std::string_view name = name_at == std::string_view::npos ? std::string_view() : rest.substr(name_at);
    if (name.empty()) {
      ++malformed_;
      consumed = next;
      continue;
    }
    std::string kept;
    if (name.size() > limits.max_name) {
      kept.assign(name.substr(0, limits.max_name));
      kept += "...";
      ++truncated_;
    } else {
      kept.assign(name);
    }
    // Checked before the insert: a replaced region frees its bytes, but a
    // full map stays full (it is read no further).
    if (regions_.size() >= limits.max_entries || bytes_ + kNodeBytes + kept.capacity() > limits.max_bytes) {
      full_ = true;
      break;
    }
    consumed = next;
    insert(start, start + size, std::move(kept));
  }
  return consumed;
}

void PerfMap::insert(uint64_t start, uint64_t end, std::string name) {
  constexpr size_t kNodeBytes = 64;  // as in append()
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
  const size_t bytes_before = st.map.memory_bytes();
  size_t malformed_before = st.map.malformed(), truncated_before = st.map.truncated();
  if (uint64_t(sb.st_dev) != st.dev || uint64_t(sb.st_ino) != st.ino || uint64_t(sb.st_size) < st.offset) {
    // Another file (a recycled pid) or one rewritten from scratch.
    st.map = PerfMap();
    malformed_before = truncated_before = 0;
    st.offset = 0;
    st.dev = sb.st_dev;
    st.ino = sb.st_ino;
  }
  // A full map is read no further (until the file is replaced, above).
  if (uint64_t(sb.st_size) > st.offset && !st.map.full()) {
    ++stats_.reads;
    // Read what was appended, in bounded chunks, up to the per-refresh
    // budget; a partial last line is read again next time.
    constexpr size_t kChunk = 4 << 20;
    const uint64_t stop_at = std::min<uint64_t>(uint64_t(sb.st_size), st.offset + opts_.max_read_per_refresh);
    std::string buf;
    while (st.offset + buf.size() < stop_at && !st.map.full()) {
      size_t keep = buf.size();  // an unfinished line, starting at st.offset
      size_t want = size_t(std::min<uint64_t>(kChunk, stop_at - st.offset - keep));
      buf.resize(keep + want);
      ssize_t n = ::pread(fd.get(), buf.data() + keep, want, off_t(st.offset + keep));
      if (n <= 0) {
        buf.resize(keep);
        break;
      }
      buf.resize(keep + size_t(n));
      size_t used = st.map.append(buf, opts_.limits);
      st.offset += used;
      buf.erase(0, used);
      if (size_t(n) < want) break;
      if (buf.size() >= kChunk) {  // a "line" longer than a chunk: not a perf map
        st.map.set_full();
        break;
      }
    }
    if (st.map.full()) {
      ++stats_.filled;
      EMBER_WARN_LIMITED("perf map %s of pid %d reached its bound (%zu regions, %zu bytes held); "
                         "JIT code it names later stays unnamed",
                         st.path.c_str(), int(pid), st.map.size(), st.map.memory_bytes());
    }
  }
  total_bytes_ = total_bytes_ - bytes_before + st.map.memory_bytes();
  stats_.malformed += st.map.malformed() - malformed_before;  // cumulative
  stats_.truncated += st.map.truncated() - truncated_before;
}

void PerfMapCache::enforce_total_bytes(pid_t keep) {
  // Least recently used first; the map just read stays.
  auto it = lru_.end();
  while (total_bytes_ > opts_.max_total_bytes && it != lru_.begin()) {
    --it;
    if (*it == keep) continue;
    auto p = procs_.find(*it);
    total_bytes_ -= p->second.map.memory_bytes();
    procs_.erase(p);
    it = lru_.erase(it);
    ++stats_.evicted_for_bytes;
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
      auto victim = procs_.find(lru_.back());
      total_bytes_ -= victim->second.map.memory_bytes();
      procs_.erase(victim);
      lru_.pop_back();
      ++stats_.evictions;
    }
  } else {
    lru_.splice(lru_.begin(), lru_, st.lru);
  }
  const PerfMap::Entry* e = st.map.lookup(addr);
  if (!e && (!st.checked || clock_.monotonic_ns() - st.checked_ns >= opts_.recheck_ns)) {
    refresh(pid, st);
    enforce_total_bytes(pid);
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
  total_bytes_ -= it->second.map.memory_bytes();
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
