#include "agent/unwind/bpf_tables.h"
#include "common/thread_name.h"

#include <bpf/bpf.h>
#include <dirent.h>

#include <algorithm>
#include <cstring>

#include "common/drops.h"
#include "common/log.h"
#include "ember_abi.h"

namespace ember::unwind {

static_assert(sizeof(ember_unwind_rule) == 16 && sizeof(UnwindRule) == 12);
static_assert(offsetof(ember_unwind_rule, kind) == offsetof(UnwindRule, kind));
static_assert(offsetof(ember_unwind_rule, aux) == offsetof(UnwindRule, aux));
static_assert(offsetof(ember_unwind_rule, rbp_offset) == offsetof(UnwindRule, rbp_offset));
static_assert(sizeof(ember_row_page) == 64 * 1024);
static_assert(sizeof(ember_text_page) == 8);
static_assert(sizeof(ember_mapping) == 40);
// Array maps store elements at a stride of the value size rounded up to 8.
static_assert(sizeof(ember_row_page) % 8 == 0 && sizeof(ember_text_page) % 8 == 0 &&
              sizeof(ember_unwind_rule) % 8 == 0 && sizeof(ember_mapping) % 8 == 0);

namespace {

// A freed range stays unused this long: BPF programs that read the old
// entries are long finished by then (they run for microseconds).
constexpr uint64_t kQuarantineNs = 1'000'000'000;

class BpfMapWriter final : public UnwindMapWriter {
 public:
  explicit BpfMapWriter(const UnwindMapFds& f) : f_(f), page_(sizeof(ember_row_page)) {}
  uint32_t row_pages() const override { return f_.row_pages; }
  uint32_t index_entries() const override { return f_.index_entries; }
  uint32_t rule_entries() const override { return f_.rule_entries; }
  uint32_t mapping_entries() const override { return f_.mapping_entries; }

  bool write_rows(uint64_t first, const ember_unwind_row* rows, size_t n) override {
    // Read-modify-write of each 64 KiB page the range touches: other
    // binaries' rows may share the page.
    while (n > 0) {
      uint32_t page = uint32_t(first / EMBER_ROWS_PER_PAGE);
      size_t slot = first % EMBER_ROWS_PER_PAGE;
      size_t k = std::min(n, size_t(EMBER_ROWS_PER_PAGE) - slot);
      if (bpf_map_lookup_elem(f_.rows, &page, page_.data()) != 0) return false;
      std::memcpy(page_.data() + slot * sizeof(ember_unwind_row), rows, k * sizeof(ember_unwind_row));
      if (bpf_map_update_elem(f_.rows, &page, page_.data(), BPF_ANY) != 0) return false;
      first += k;
      rows += k;
      n -= k;
    }
    return true;
  }
  bool write_index(uint32_t first, const ember_text_page* e, size_t n) override {
    return write_each(f_.index, first, e, n);
  }
  bool write_rule(uint32_t id, const ember_unwind_rule& rule) override {
    return bpf_map_update_elem(f_.rules, &id, &rule, BPF_ANY) == 0;
  }
  bool write_mappings(uint32_t first, const ember_mapping* e, size_t n) override {
    return write_each(f_.mappings, first, e, n);
  }
  bool set_process(uint32_t pid, uint32_t mapping_first, uint32_t count) override {
    ember_proc p{mapping_first, count};
    return bpf_map_update_elem(f_.procs, &pid, &p, BPF_ANY) == 0;
  }
  void delete_process(uint32_t pid) override { bpf_map_delete_elem(f_.procs, &pid); }

 private:
  template <class T>
  static bool write_each(int fd, uint32_t first, const T* e, size_t n) {
    if (n == 0) return true;
    // One syscall for the whole run where the kernel has batch updates.
    std::vector<uint32_t> keys(n);
    for (size_t i = 0; i < n; ++i) keys[i] = first + uint32_t(i);
    uint32_t count = uint32_t(n);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_update_batch(fd, keys.data(), e, &count, &opts) == 0 && count == n) return true;
    for (size_t i = 0; i < n; ++i)
      if (bpf_map_update_elem(fd, &keys[i], &e[i], BPF_ANY) != 0) return false;
    return true;
  }
  UnwindMapFds f_;
  std::vector<uint8_t> page_;
};

}  // namespace

std::unique_ptr<UnwindMapWriter> make_bpf_map_writer(const UnwindMapFds& fds) {
  return std::make_unique<BpfMapWriter>(fds);
}

RangeAllocator::RangeAllocator(uint64_t size) : size_(size) {
  if (size) free_[0] = size;
}

int64_t RangeAllocator::alloc(uint64_t n) {
  if (n == 0) return int64_t(size_);  // empty ranges need no room
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < n) continue;
    uint64_t start = it->first, len = it->second;
    free_.erase(it);
    if (len > n) free_[start + n] = len - n;
    used_ += n;
    return int64_t(start);
  }
  return -1;
}

void RangeAllocator::free_now(uint64_t start, uint64_t n) {
  if (n == 0) return;
  used_ -= n;
  auto next = free_.lower_bound(start);
  // Coalesce with the following and preceding free runs.
  if (next != free_.end() && start + n == next->first) {
    n += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      prev->second += n;
      return;
    }
  }
  free_[start] = n;
}

void RangeAllocator::free_later(uint64_t start, uint64_t n, uint64_t release_at_ns) {
  if (n) quarantine_.emplace_back(release_at_ns, start, n);
}

void RangeAllocator::release_due(uint64_t now_ns) {
  while (!quarantine_.empty() && std::get<0>(quarantine_.front()) <= now_ns) {
    free_now(std::get<1>(quarantine_.front()), std::get<2>(quarantine_.front()));
    quarantine_.pop_front();
  }
}

BpfUnwindTables::BpfUnwindTables(std::unique_ptr<UnwindMapWriter> maps, UnwindTableCache& cache,
                                 const Clock& clock, Metrics& metrics, Options opts)
    : maps_(std::move(maps)),
      cache_(cache),
      clock_(clock),
      rows_(uint64_t(maps_->row_pages()) * EMBER_ROWS_PER_PAGE),
      index_(maps_->index_entries()),
      mappings_(maps_->mapping_entries()),
      loads_(metrics.counter("ember_unwind_process_loads_total", "",
                             "Processes whose mappings were published to the BPF unwinder")),
      abandoned_(metrics.counter("ember_unwind_process_loads_abandoned_total", "",
                                 "Process loads given up between binaries because a newer "
                                 "snapshot of the process, or its exit, was queued")),
      binary_loads_(metrics.counter("ember_unwind_binary_loads_total", "",
                                    "Binaries whose rows were written to the BPF maps")),
      binaries_reused_(metrics.counter("ember_unwind_binaries_reused_total", "",
                                       "Binaries found still loaded (retained) when a process mapped them again")),
      retained_gauge_(metrics.gauge("ember_unwind_binaries_retained", "",
                                    "Binaries kept in the BPF maps with no process mapping them")),
      binaries_gauge_(metrics.gauge("ember_unwind_binaries", "", "Binaries with tables in BPF maps")),
      processes_gauge_(metrics.gauge("ember_unwind_processes", "", "Processes published to BPF")),
      rows_gauge_(metrics.gauge("ember_unwind_rows", "", "Unwind table rows in BPF maps")),
      table_bytes_gauge_(metrics.gauge("ember_unwind_row_bytes", "",
                                       "Bytes of BPF row pages in use (4 per row)")),
      no_room_(drop_counter(metrics, Drop::kTableMapsFull)),
      write_failures_(drop_counter(metrics, Drop::kTableMapWrite)),
      no_table_(drop_counter(metrics, Drop::kTableNoTable)),
      too_many_mappings_(drop_counter(metrics, Drop::kTableTooManyMappings)) {
  stats_.rows_capacity = uint64_t(maps_->row_pages()) * EMBER_ROWS_PER_PAGE;
  max_retained_rows_ = uint64_t(double(stats_.rows_capacity) * std::clamp(opts.retention, 0.0, 1.0));
}

BpfUnwindTables::~BpfUnwindTables() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BpfUnwindTables::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void BpfUnwindTables::process_seen(std::shared_ptr<const ProcessSnapshot> snap) {
  if (!snap || !snap->maps_ok) return;
  std::lock_guard<std::mutex> lock(mu_);
  // A newer snapshot of a process still waiting replaces the older one.
  for (auto& w : queue_) {
    if (w.pid == uint32_t(snap->pid) && w.snap) {
      w.snap = std::move(snap);
      return;
    }
  }
  ++queued_per_pid_[uint32_t(snap->pid)];
  queue_.push_back(Work{uint32_t(snap->pid), std::move(snap)});
  // Only an idle loader needs waking; a busy one takes the queue as it goes.
  if (idle_) cv_.notify_all();
}

void BpfUnwindTables::process_exited(uint32_t pid) {
  // Not urgent: BPF already dropped the process's entry at exit, and its
  // rows are quarantined for a second anyway. The loader takes it on its
  // next wakeup (at most a second away), not with a wakeup of its own: a
  // storm of short-lived processes otherwise woke it twice per process.
  std::lock_guard<std::mutex> lock(mu_);
  ++queued_per_pid_[pid];
  queue_.push_back(Work{pid, nullptr});
}

void BpfUnwindTables::preload_all(const std::string& proc_root) {
  DIR* d = opendir(proc_root.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    auto snap = read_process_snapshot(proc_root, pid_t(pid));
    if (snap && !(*snap)->mappings.empty()) process_seen(std::move(*snap));
  }
  closedir(d);
}

void BpfUnwindTables::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.notify_all();  // exits queue without waking the loader
  cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

BpfUnwindTables::Stats BpfUnwindTables::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BpfUnwindTables::run() {
  name_this_thread("ember-tables");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      // Sleep until work comes or the next quarantined range is due; with
      // nothing in quarantine, until work comes (a wakeup per second cost
      // the idle agent as much as all its sampling: agent_cost.sh).
      idle_ = true;
      uint64_t due = std::min({rows_.next_release_ns(), index_.next_release_ns(),
                               mappings_.next_release_ns()});
      auto ready = [this] { return stop_ || !queue_.empty(); };
      if (due == UINT64_MAX) {
        cv_.wait(lock, ready);
      } else {
        uint64_t now = clock_.monotonic_ns();
        cv_.wait_for(lock, std::chrono::nanoseconds(due > now ? due - now : 0), ready);
      }
      idle_ = false;
    }
    if (stop_) return;
    uint64_t now = clock_.monotonic_ns();
    rows_.release_due(now);
    index_.release_due(now);
    mappings_.release_due(now);
    if (queue_.empty()) continue;
    Work w = std::move(queue_.front());
    queue_.pop_front();
    if (auto q = queued_per_pid_.find(w.pid); q != queued_per_pid_.end() && --q->second == 0)
      queued_per_pid_.erase(q);
    busy_ = true;
    lock.unlock();
    if (w.snap) load_process(*w.snap);
    else unload_process(w.pid, /*delete_entry=*/true);
    publish_stats();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

void BpfUnwindTables::publish_stats() {
  Stats s;
  s.binaries = binaries_.size();
  s.retained = retained_.size();
  s.processes = processes_.size();
  s.rows = rows_.used();
  s.rows_capacity = rows_.size();
  s.index_entries = index_.used();
  s.rules = rules_used_;
  s.mapping_entries = mappings_.used();
  binaries_gauge_.set(s.binaries);
  retained_gauge_.set(s.retained);
  processes_gauge_.set(s.processes);
  rows_gauge_.set(s.rows);
  table_bytes_gauge_.set(s.rows * sizeof(ember_unwind_row));
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = s;
}

bool BpfUnwindTables::intern_rules(const UnwindTable& t, std::vector<uint16_t>* ids) {
  ids->resize(t.rules().size());
  for (size_t i = 0; i < t.rules().size(); ++i) {
    const UnwindRule& r = t.rules()[i];
    std::string bytes(reinterpret_cast<const char*>(&r), sizeof(r));
    auto it = rule_ids_.find(bytes);
    if (it == rule_ids_.end()) {
      if (rules_used_ >= maps_->rule_entries() || rules_used_ > 0xffff) return false;
      uint16_t id = uint16_t(rules_used_);
      ember_unwind_rule er{};
      std::memcpy(&er, &r, sizeof(r));
      if (!maps_->write_rule(id, er)) {
        write_failures_.add();
        return false;
      }
      ++rules_used_;
      it = rule_ids_.emplace(std::move(bytes), id).first;
    }
    (*ids)[i] = it->second;
  }
  return true;
}

BpfUnwindTables::LoadedBinary* BpfUnwindTables::load_binary(const UnwindTableCache::Ref& ref,
                                                            std::vector<std::string>* loading) {
  auto found = binaries_.find(ref.key);
  if (found != binaries_.end() && found->second.table != ref.table &&
      found->second.table->debug_deferred()) {
    // The cache rebuilt this binary's table once its debug file could be
    // looked up (see UnwindTableCache): its rows replace the degraded ones.
    supersede(found, loading);
    found = binaries_.end();
  }
  if (found != binaries_.end()) {
    LoadedBinary& b = found->second;
    if (b.refs == 0) {  // retained: in use again, rows untouched
      retained_.erase(b.retained_at);
      retained_rows_ -= b.row_count;
      binaries_reused_.add();
    }
    return &b;
  }

  const UnwindTable& t = *ref.table;
  const auto& rows = t.rows();
  if (rows.empty()) return nullptr;
  std::vector<uint16_t> rule_ids;
  if (!intern_rules(t, &rule_ids)) {
    no_room_.add();
    return nullptr;
  }
  uint64_t page_first = t.pc(rows.front()) >> 16;
  uint64_t page_last = t.pc(rows.back()) >> 16;
  uint64_t page_count = page_last - page_first + 1;
  int64_t row_start = rows_.alloc(rows.size());
  int64_t index_base = index_.alloc(page_count);
  // No room: the retained binaries go first (those released over a
  // quarantine ago are free at once), then try again.
  while ((row_start < 0 || index_base < 0) && !retained_.empty()) {
    if (row_start >= 0) rows_.free_later(uint64_t(row_start), rows.size(), 0);
    if (index_base >= 0) index_.free_later(uint64_t(index_base), page_count, 0);
    while (evict_retained()) {
    }
    rows_.release_due(clock_.monotonic_ns());
    index_.release_due(clock_.monotonic_ns());
    row_start = rows_.alloc(rows.size());
    index_base = index_.alloc(page_count);
  }
  if (row_start < 0 || index_base < 0 || page_count > 0xffffffffu) {
    if (row_start >= 0) rows_.free_later(uint64_t(row_start), rows.size(), 0);
    if (index_base >= 0) index_.free_later(uint64_t(index_base), page_count, 0);
    no_room_.add();
    return nullptr;
  }
  // Rows first, then the index that points at them: BPF only reaches either
  // through a process entry published after both.
  std::vector<ember_unwind_row> packed(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    packed[i].pc_low = uint16_t(t.pc(rows[i]) & 0xffff);
    packed[i].rule = rule_ids[rows[i].rule];
  }
  std::vector<ember_text_page> pages(page_count);
  size_t r = 0;
  uint16_t carry = 0;  // kNone before the first row
  for (uint64_t p = 0; p < page_count; ++p) {
    uint64_t page = page_first + p;
    size_t first = r;
    while (r < rows.size() && (t.pc(rows[r]) >> 16) == page) ++r;
    ember_text_page& e = pages[p];
    e.first_row = uint32_t(uint64_t(row_start) + first);
    size_t count = r - first;
    if (count > 0xffff) count = 0xffff;  // 64 KiB of text cannot hold more rows
    e.count = uint16_t(count);
    e.carry_rule = carry;
    if (r > first) carry = rule_ids[rows[r - 1].rule];
  }
  if (!maps_->write_rows(uint64_t(row_start), packed.data(), packed.size()) ||
      !maps_->write_index(uint32_t(index_base), pages.data(), pages.size())) {
    rows_.free_later(uint64_t(row_start), rows.size(), 0);
    index_.free_later(uint64_t(index_base), page_count, 0);
    write_failures_.add();
    return nullptr;
  }
  LoadedBinary b;
  b.row_start = uint32_t(row_start);
  b.row_count = uint32_t(rows.size());
  b.index_base = uint32_t(index_base);
  b.page_first = uint32_t(page_first);
  b.page_count = uint32_t(page_count);
  b.table = ref.table;
  binary_loads_.add();
  return &binaries_.emplace(ref.key, std::move(b)).first->second;
}

bool BpfUnwindTables::evict_retained() {
  if (retained_.empty()) return false;
  auto it = binaries_.find(retained_.back());
  retained_.pop_back();
  if (it == binaries_.end()) return true;
  LoadedBinary& b = it->second;
  retained_rows_ -= b.row_count;
  // A walk that read a mapping entry of its last process may still be using
  // its rows until the quarantine after its release has passed.
  uint64_t later = b.released_ns + kQuarantineNs;
  rows_.free_later(b.row_start, b.row_count, later);
  index_.free_later(b.index_base, b.page_count, later);
  binaries_.erase(it);
  return true;
}

void BpfUnwindTables::supersede(std::unordered_map<std::string, LoadedBinary>::iterator it,
                                std::vector<std::string>* loading) {
  if (it->second.refs == 0) {  // retained: free it now (after the quarantine)
    retained_.erase(it->second.retained_at);
    retained_.push_back(it->first);
    evict_retained();
    return;
  }
  // Still mapped by live processes: keep its rows under a name of its own
  // until the last of them lets go, so the key is free for the new table.
  std::string old_key = it->first + "\n" + std::to_string(++superseded_);
  for (auto& [pid, lp] : processes_)
    for (auto& k : lp.binaries)
      if (k == it->first) k = old_key;
  for (auto& k : *loading)  // the process being loaded may hold it already
    if (k == it->first) k = old_key;
  auto node = binaries_.extract(it);
  node.key() = old_key;
  binaries_.insert(std::move(node));
}

void BpfUnwindTables::unref_binary(const std::string& key) {
  auto it = binaries_.find(key);
  if (it == binaries_.end() || --it->second.refs > 0) return;
  LoadedBinary& b = it->second;
  b.released_ns = clock_.monotonic_ns();
  retained_.push_front(key);
  b.retained_at = retained_.begin();
  retained_rows_ += b.row_count;
  while (retained_rows_ > max_retained_rows_ && evict_retained()) {
  }
}

bool BpfUnwindTables::superseded(uint32_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_per_pid_.count(pid) != 0;
}

void BpfUnwindTables::load_process(const ProcessSnapshot& snap) {
  std::vector<ember_mapping> entries;
  std::vector<std::string> keys;
  const uint32_t pid = uint32_t(snap.pid);
  for (const MapEntry& m : snap.mappings) {
    if (entries.size() >= EMBER_MAX_PROC_MAPPINGS) {
      too_many_mappings_.add();
      break;
    }
    // A snapshot goes stale while its tables are built: a child sampled
    // between fork and exec has its parent's mappings (ember record's child
    // is a fork of ember: 46 libraries), and its exec sends a new snapshot
    // at once. Building the rest of the old one held the new one back for
    // 50-100 ms, and samples of the new image meanwhile had no tables for
    // libc (1.5% of UnwindE2E.CallbackFromLibcQsortUnwindsBackToMain's
    // samples, in 2 of 40 runs). So between binaries, newer work wins.
    // Checked only where a table may be built: anonymous mappings cost nothing.
    const bool has_code = m.is_file() || m.path == "[vdso]";
    if (has_code && superseded(pid)) {
      abandoned_.add();
      for (const auto& k : keys) unref_binary(k);
      return;
    }
    ember_mapping e{};
    e.start = m.start;
    e.end = m.end;
    e.flags = EMBER_MAPPING_F_NO_TABLE;  // until a table proves otherwise
    if (has_code) {
      UnwindTableCache::Ref ref = cache_.for_mapping(snap, m);
      uint64_t bias = 0;
      LoadedBinary* b = nullptr;
      if (ref && ref.table->bias_for(m.start, m.offset, &bias)) b = load_binary(ref, &keys);
      if (b) {
        b->refs++;
        keys.push_back(ref.key);
        e.bias = bias;
        e.index_base = b->index_base;
        e.page_first = b->page_first;
        e.page_count = b->page_count;
        e.flags = 0;
      } else {
        no_table_.add();
      }
    }
    entries.push_back(e);
  }
  int64_t first = mappings_.alloc(entries.size());
  if (first < 0) {
    no_room_.add();
    for (const auto& k : keys) unref_binary(k);
    return;
  }
  if (!maps_->write_mappings(uint32_t(first), entries.data(), entries.size()) ||
      !maps_->set_process(pid, uint32_t(first), uint32_t(entries.size()))) {
    write_failures_.add();
    mappings_.free_later(uint64_t(first), entries.size(), 0);
    for (const auto& k : keys) unref_binary(k);
    return;
  }
  // The new entry is live: retire the previous one (if any).
  unload_process(pid, /*delete_entry=*/false);
  LoadedProcess lp;
  lp.mapping_first = uint32_t(first);
  lp.mapping_count = uint32_t(entries.size());
  lp.binaries = std::move(keys);
  processes_[pid] = std::move(lp);
  loads_.add();
}

void BpfUnwindTables::unload_process(uint32_t pid, bool delete_entry) {
  auto it = processes_.find(pid);
  if (delete_entry) maps_->delete_process(pid);
  if (it == processes_.end()) return;
  mappings_.free_later(it->second.mapping_first, it->second.mapping_count,
                       clock_.monotonic_ns() + kQuarantineNs);
  for (const auto& k : it->second.binaries) unref_binary(k);
  processes_.erase(it);
}

}  // namespace ember::unwind
