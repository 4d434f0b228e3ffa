#include "agent/process/process_table.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/in_root.h"
#include "common/log.h"

namespace ember {

ProcessTable::ProcessTable(Options opts, const Clock& clock, Metrics& metrics)
    : opts_(std::move(opts)),
      clock_(clock),
      snapshots_read_(metrics.counter("ember_process_snapshots_total", "",
                                      "Reads of /proc/PID/maps")),
      snapshots_failed_(metrics.counter("ember_process_snapshot_failures_total", "",
                                        "Processes gone before their maps could be read")),
      pinned_(metrics.counter("ember_files_pinned_total", "",
                              "Mapped files opened at snapshot time, before the symbolizer had them")),
      pin_budget_exhausted_(metrics.counter("ember_files_not_pinned_total", "",
                                            "Files not pinned because max_pinned_total fds were open")),
      copy_rereads_(metrics.counter("ember_process_copy_rereads_total", "",
                                    "Process maps re-read at drain time because a stack copy, to be "
                                    "walked later, was taken after the snapshot was read")),
      miss_rereads_(metrics.counter("ember_process_miss_rereads_total", "",
                                    "Re-reads of /proc/PID/maps because a sample's address was not mapped")),
      evicted_(metrics.counter("ember_processes_evicted_total", "",
                               "Process entries dropped to stay within max_processes")),
      tracked_(metrics.gauge("ember_processes_tracked", "", "Processes in the process table")),
      roots_not_held_(metrics.counter("ember_process_roots_not_held_total", "",
                                      "Process roots not held open because max_roots distinct ones were")),
      mappings_dropped_(metrics.counter("ember_process_mappings_dropped_total", "",
                                        "Executable mappings left out of process snapshots past the "
                                        "per-process bound (16384)")) {}

std::shared_ptr<const ProcessSnapshot> ProcessTable::read(uint32_t pid, Entry& e) {
  uint64_t now = clock_.monotonic_ns();
  e.last_read_ns = now;
  auto snap = read_process_snapshot(opts_.proc_root, pid_t(pid));
  std::shared_ptr<ProcessSnapshot> s;
  if (snap) {
    snapshots_read_.add();
    s = std::move(*snap);
    if (s->mappings_dropped) {
      mappings_dropped_.add(s->mappings_dropped);
      EMBER_WARN_LIMITED("pid %u maps %zu executable regions; the %zu past the first %zu "
                         "(anonymous ones first) are not symbolized",
                         pid, s->mappings.size() + s->mappings_dropped, s->mappings_dropped,
                         s->mappings.size());
    }
    pin_unknown_files(*s);
    // The root was opened at exec; a process that predates us gets it here.
    if (!e.root) e.root = open_root(pid);
  } else {
    // Gone already (or never readable): keep what the exec event told us so
    // the executable's frames still resolve.
    snapshots_failed_.add();
    s = std::make_shared<ProcessSnapshot>();
    s->pid = pid_t(pid);
    s->proc_root = opts_.proc_root;
    s->maps_ok = false;
    s->exe_path = e.exec_filename;
  }
  s->generation = e.generation;
  s->exec_hint = e.hint;
  s->root = e.root;
  // With readable maps the executable is pinned (if needed) like any
  // mapping; the exec-time handle is only for a process already gone.
  if (s->maps_ok) e.exe_fd.reset();
  else s->exe_fd = e.exe_fd;
  if (s->exe_path.empty()) s->exe_path = e.exec_filename;
  e.snap = s;
  e.stale = false;
  if (s->maps_ok && opts_.on_snapshot) opts_.on_snapshot(e.snap);
  return e.snap;
}

void ProcessTable::pin_unknown_files(ProcessSnapshot& s) {
  if (!opts_.file_known) return;
  s.pinned.resize(s.mappings.size());
  size_t pinned = 0;
  for (size_t i = 0; i < s.mappings.size() && pinned < opts_.max_pinned_per_process; ++i) {
    const MapEntry& m = s.mappings[i];
    if (!m.is_file() || opts_.file_known(uint64_t(m.dev()), m.inode)) continue;
    // A file mapped twice (text and another segment) is pinned once.
    if (i > 0 && s.mappings[i - 1].inode == m.inode && s.pinned[i - 1]) {
      s.pinned[i] = s.pinned[i - 1];
      continue;
    }
    if (pinned_live_->load(std::memory_order_relaxed) >= opts_.max_pinned_total) {
      pin_budget_exhausted_.add();
      continue;
    }
    UniqueFd fd = open_regular_file(s.map_files_path(m));
    if (!fd.valid()) fd = s.open_by_path(m);
    if (!fd.valid()) continue;
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || st.st_ino != m.inode) continue;
    s.pinned[i] = std::make_shared<PinnedFile>(std::move(fd), pinned_live_, opts_.pin_consumers);
    ++pinned;
  }
  pinned_.add(pinned);
}

std::shared_ptr<const ProcessSnapshot> ProcessTable::snapshot_for(
    uint32_t pid, const std::vector<uint64_t>& user_stack, uint64_t copy_taken_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t now = clock_.monotonic_ns();
  auto [it, inserted] = table_.try_emplace(pid);
  it->second.last_used_ns = now;
  if (inserted) {
    tracked_.set(table_.size());
    evict_if_needed();
    it = table_.find(pid);
    if (it == table_.end()) return nullptr;
  }
  Entry& e = it->second;
  // A failed read is retried after the refresh interval: the process may
  // have been between fork and exec, or /proc briefly unreadable.
  bool fresh_enough =
      !e.stale && e.snap &&
      (e.snap->maps_ok || now - e.last_read_ns < opts_.refresh_min_interval_ns);
  if (!fresh_enough) return read(pid, e);
  if (!e.snap->maps_ok || (user_stack.empty() && !copy_taken_ns)) return e.snap;

  bool covered = true;
  for (uint64_t addr : user_stack) {
    if (addr != 0 && !e.snap->find(addr)) {
      covered = false;
      break;
    }
  }
  // A stack copy is walked later, on the pipeline thread, through whatever
  // this snapshot maps; by then a short-lived process is gone. If the copy
  // was taken after the snapshot was read, the walk may meet a library
  // mapped in between (libc, mapped by the loader just after the first
  // snapshot), so read again now, while the process still exists.
  bool copy_newer = copy_taken_ns != 0 && copy_taken_ns > e.last_read_ns;
  if ((covered && !copy_newer) || now - e.last_read_ns < e.miss_backoff_ns) return e.snap;
  (covered ? copy_rereads_ : miss_rereads_).add();
  auto before = e.snap;
  auto after = read(pid, e);
  if (!after->maps_ok) {
    // Gone since: the older snapshot still places more than an empty one.
    e.snap = before;
    return before;
  }
  bool now_covered = true;
  for (uint64_t addr : user_stack)
    if (addr != 0 && !after->find(addr)) now_covered = false;
  // A re-read that found what was missing, or found the mappings changing
  // (a loader at work), may be repeated at once; one that changed nothing
  // backs off, so stray addresses or a process whose tables never load
  // cannot cause a storm of reads.
  bool helped = covered ? after->mappings.size() != before->mappings.size() : now_covered;
  e.miss_backoff_ns = helped ? 0
                             : std::min(opts_.refresh_min_interval_ns,
                                        std::max(opts_.miss_reread_initial_ns, e.miss_backoff_ns * 2));
  return after;
}

void ProcessTable::on_exec(const ExecEvent& ev) {
  // Grab the new executable now, while the process surely exists: if it exits
  // before its first sample is drained, this fd still reads its symbols.
  std::shared_ptr<PinnedFile> fd;
  if (!opts_.file_known || !opts_.file_known(uint64_t(ev.hint.dev), ev.hint.inode)) {
    if (pinned_live_->load(std::memory_order_relaxed) < opts_.max_pinned_total) {
      std::string exe = opts_.proc_root + "/" + std::to_string(ev.pid) + "/exe";
      UniqueFd raw = open_regular_file(exe);
      struct stat st{};
      if (raw.valid() && ::fstat(raw.get(), &st) == 0 && st.st_ino == ev.hint.inode)
        fd = std::make_shared<PinnedFile>(std::move(raw), pinned_live_, opts_.pin_consumers);
    } else {
      pin_budget_exhausted_.add();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = table_[ev.pid];
  e.generation++;
  e.hint = ev.hint;
  e.exe_fd = std::move(fd);
  // A new image may live in a new root (a container's entrypoint). Opened
  // now, while the process surely exists.
  e.root = open_root(ev.pid);
  e.exec_filename = ev.filename;
  e.stale = true;
  e.miss_backoff_ns = 0;
  e.last_used_ns = clock_.monotonic_ns();
  tracked_.set(table_.size());
  evict_if_needed();
}

std::shared_ptr<const RootDir> ProcessTable::open_root(uint32_t pid) {
  auto root = RootDir::open(opts_.proc_root + "/" + std::to_string(pid) + "/root");
  if (!root) return nullptr;
  auto key = std::make_pair(root->dev(), root->ino());
  auto it = roots_.find(key);
  if (it != roots_.end()) {
    if (auto held = it->second.lock()) return held;  // ours closes; the shared one stays
  }
  // Sweep at the bound too: otherwise a map filled once with roots that have
  // since closed would refuse every new one for good.
  if (roots_.size() >= std::min(roots_sweep_at_, opts_.max_roots)) {
    for (auto r = roots_.begin(); r != roots_.end();) {
      if (r->second.expired()) r = roots_.erase(r);
      else ++r;
    }
    roots_sweep_at_ = std::max<size_t>(64, roots_.size() * 2);
  }
  // Every chroot is a root of its own: a workload could make a descriptor
  // per process. Beyond the bound a process's root is not held (its debug
  // lookups are deferred instead if it exits first).
  if (roots_.size() >= opts_.max_roots) {
    roots_not_held_.add();
    return nullptr;
  }
  roots_[key] = root;
  return root;
}

void ProcessTable::on_exit(const ExitEvent& ev) {
  std::lock_guard<std::mutex> lock(mu_);
  table_.erase(ev.pid);
  if (opts_.on_exit) opts_.on_exit(ev.pid);
  tracked_.set(table_.size());
}

std::shared_ptr<const ProcessSnapshot> ProcessTable::refresh(const ProcessSnapshot& stale) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(uint32_t(stale.pid));
  if (it == table_.end()) return nullptr;
  Entry& e = it->second;
  if (e.generation != stale.generation) return nullptr;  // exec'd since: different image
  if (e.snap && e.snap.get() != &stale) return e.snap;    // someone refreshed already
  if (clock_.monotonic_ns() - e.last_read_ns < opts_.refresh_min_interval_ns) return nullptr;
  auto fresh = read(uint32_t(stale.pid), e);
  return fresh->maps_ok ? fresh : nullptr;
}

size_t ProcessTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_.size();
}

void ProcessTable::evict_if_needed() {
  if (table_.size() <= opts_.max_processes) return;
  // Rare (only with more live processes than the bound): a linear scan for
  // the least recently used entries is fine.
  std::vector<std::pair<uint64_t, uint32_t>> ages;
  ages.reserve(table_.size());
  for (const auto& [pid, e] : table_) ages.emplace_back(e.last_used_ns, pid);
  size_t excess = table_.size() - opts_.max_processes + opts_.max_processes / 16 + 1;
  excess = std::min(excess, ages.size());
  std::partial_sort(ages.begin(), ages.begin() + excess, ages.end());
  for (size_t i = 0; i < excess; ++i) table_.erase(ages[i].second);
  evicted_.add(excess);
  tracked_.set(table_.size());
}

}  // namespace ember
