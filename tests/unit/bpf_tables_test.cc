// BpfUnwindTables against an in-memory stand-in for the BPF maps: what it
// writes must let the BPF lookup (replayed here exactly as profile.bpf.c does
// it) find the same rule as the table itself, binaries must be shared and
// reference-counted across processes, and freed space must be reused only
// after the quarantine.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "agent/unwind/bpf_tables.h"
#include "ember_abi.h"

namespace ember::unwind {
namespace {

class FakeMaps final : public UnwindMapWriter {
 public:
  FakeMaps(uint32_t pages, uint32_t index, uint32_t mappings)
      : rows(size_t(pages) * EMBER_ROWS_PER_PAGE), idx(index), rules(4096), maps(mappings) {}
  uint64_t rows_written = 0;
  uint32_t row_pages() const override { return uint32_t(rows.size() / EMBER_ROWS_PER_PAGE); }
  uint32_t index_entries() const override { return uint32_t(idx.size()); }
  uint32_t rule_entries() const override { return uint32_t(rules.size()); }
  uint32_t mapping_entries() const override { return uint32_t(maps.size()); }
  bool write_rows(uint64_t first, const ember_unwind_row* r, size_t n) override {
    std::copy(r, r + n, rows.begin() + long(first));
    rows_written += n;
    ++binaries_written;
    if (on_write_rows) on_write_rows();
    return true;
  }
  // Called on the loader thread after each binary's rows are written.
  std::function<void()> on_write_rows;
  int binaries_written = 0;
  bool write_index(uint32_t first, const ember_text_page* e, size_t n) override {
    std::copy(e, e + n, idx.begin() + first);
    return true;
  }
  bool write_rule(uint32_t id, const ember_unwind_rule& r) override {
    rules[id] = r;
    return true;
  }
  bool write_mappings(uint32_t first, const ember_mapping* e, size_t n) override {
    std::copy(e, e + n, maps.begin() + first);
    return true;
  }
  bool set_process(uint32_t pid, uint32_t first, uint32_t count) override {
    procs[pid] = {first, count};
    return true;
  }
  void delete_process(uint32_t pid) override { procs.erase(pid); }

  // The BPF side's lookup, step for step (find_mapping + find_rule).
  std::optional<ember_unwind_rule> lookup(uint32_t pid, uint64_t addr) const {
    auto p = procs.find(pid);
    if (p == procs.end()) return std::nullopt;
    uint32_t lo = 0, hi = p->second.count;
    const ember_mapping* m = nullptr;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      const ember_mapping& c = maps[p->second.first + mid];
      if (addr < c.start) hi = mid;
      else if (addr >= c.end) lo = mid + 1;
      else {
        m = &c;
        break;
      }
    }
    if (!m) return std::nullopt;
    ember_unwind_rule out{};
    if (m->flags & EMBER_MAPPING_F_NO_TABLE) return out;
    uint64_t vaddr = addr - m->bias, page = vaddr >> 16;
    if (page < m->page_first || page - m->page_first >= m->page_count) return out;
    const ember_text_page& tp = idx[m->index_base + (page - m->page_first)];
    uint16_t target = vaddr & 0xffff;
    uint32_t rule = tp.carry_rule;
    lo = 0;
    hi = tp.count;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      const ember_unwind_row& row = rows[tp.first_row + mid];
      if (row.pc_low <= target) {
        rule = row.rule;
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return rules[rule];
  }

  std::vector<ember_unwind_row> rows;
  std::vector<ember_text_page> idx;
  std::vector<ember_unwind_rule> rules;
  std::vector<ember_mapping> maps;
  std::map<uint32_t, ember_proc> procs;
};

bool same(const ember_unwind_rule& a, const UnwindRule& b) {
  return a.kind == b.kind && a.cfa_offset == b.cfa_offset && a.rbp_offset == b.rbp_offset &&
         a.ra_offset == b.ra_offset && a.flags == b.flags && a.reg == b.reg && a.aux == b.aux;
}

std::shared_ptr<const ProcessSnapshot> self_snapshot(pid_t as_pid) {
  auto snap = read_process_snapshot("/proc", getpid());
  EXPECT_TRUE(snap.ok());
  auto s = std::move(*snap);
  s->pid = as_pid;  // pretend to be several processes mapping the same files
  return s;
}

struct Rig {
  explicit Rig(double retention = 0) {
    auto m = std::make_unique<FakeMaps>(64, 4096, 4096);
    maps = m.get();
    BpfUnwindTables::Options o;
    o.retention = retention;
    tables = std::make_unique<BpfUnwindTables>(std::move(m), cache, clock, metrics, o);
    tables->start();
  }
  UnwindTableCache cache{{}};
  ManualClock clock;
  Metrics metrics;
  FakeMaps* maps;
  std::unique_ptr<BpfUnwindTables> tables;
};

TEST(BpfUnwindTables, LookupThroughTheMapsMatchesTheTableEverywhere) {
  Rig rig;
  auto snap = self_snapshot(100);
  rig.tables->process_seen(snap);
  rig.tables->flush();
  ASSERT_EQ(rig.maps->procs.count(100), 1u);
  UnwindTableCache cache({});
  size_t checked = 0, mismatches = 0;
  for (const MapEntry& m : snap->mappings) {
    auto ref = cache.for_mapping(*snap, m);
    if (!ref) continue;
    uint64_t bias = 0;
    if (!ref.table->bias_for(m.start, m.offset, &bias)) continue;
    // Every row start, the byte before it, and a point inside: in this
    // mapping's address range.
    for (const auto& row : ref.table->rows()) {
      const uint64_t pc = ref.table->pc(row);
      for (uint64_t vaddr : {pc, pc - 1, pc + 1}) {
        uint64_t addr = vaddr + bias;
        if (addr < m.start || addr >= m.end) continue;
        auto got = rig.maps->lookup(100, addr);
        ASSERT_TRUE(got.has_value());
        ++checked;
        if (!same(*got, ref.table->find(vaddr)) && ++mismatches < 5)
          ADD_FAILURE() << m.path << " vaddr 0x" << std::hex << vaddr;
      }
    }
  }
  std::printf("[ info ] %zu addresses looked up through the BPF layout, %zu mismatches\n", checked,
              mismatches);
  EXPECT_GT(checked, 50000u);  // libc alone has 28k rows
  EXPECT_EQ(mismatches, 0u);
}

TEST(BpfUnwindTables, BinariesAreSharedAndFreedAfterTheLastProcessAndTheQuarantine) {
  Rig rig;
  rig.tables->process_seen(self_snapshot(100));
  rig.tables->flush();
  auto one = rig.tables->stats();
  rig.tables->process_seen(self_snapshot(101));
  rig.tables->flush();
  auto two = rig.tables->stats();
  EXPECT_EQ(two.binaries, one.binaries);  // the second process shares every binary
  EXPECT_EQ(two.rows, one.rows);
  EXPECT_EQ(two.processes, 2u);
  EXPECT_EQ(two.mapping_entries, 2 * one.mapping_entries);

  rig.tables->process_exited(100);
  rig.tables->flush();
  EXPECT_EQ(rig.maps->procs.count(100), 0u);
  EXPECT_EQ(rig.tables->stats().binaries, one.binaries);  // 101 still maps them
  rig.tables->process_exited(101);
  rig.tables->flush();
  auto gone = rig.tables->stats();
  EXPECT_EQ(gone.binaries, 0u);
  EXPECT_EQ(gone.processes, 0u);
  // Freed rows stay quarantined for a second: still "used".
  EXPECT_EQ(gone.rows, one.rows);
  rig.clock.advance(2'000'000'000);
  rig.tables->process_seen(self_snapshot(102));  // wakes the loader, which releases first
  rig.tables->flush();
  auto again = rig.tables->stats();
  EXPECT_EQ(again.rows, one.rows);  // reused, not grown
  EXPECT_EQ(again.processes, 1u);
}

// Short-lived processes map the same binaries again and again: with
// retention their rows stay in the maps after the last process exits, and
// the next process reuses them without writing a row.
TEST(BpfUnwindTables, RetainedBinariesAreReusedWithoutRewritingRows) {
  Rig rig(0.5);
  rig.tables->process_seen(self_snapshot(100));
  rig.tables->flush();
  auto one = rig.tables->stats();
  const uint64_t loads = rig.metrics.total("ember_unwind_binary_loads_total");
  const uint64_t written = rig.maps->rows_written;
  EXPECT_EQ(loads, one.binaries);
  rig.tables->process_exited(100);
  rig.tables->flush();
  auto after = rig.tables->stats();
  EXPECT_EQ(after.processes, 0u);
  EXPECT_EQ(after.binaries, one.binaries);  // all retained
  EXPECT_EQ(after.retained, one.binaries);
  rig.clock.advance(10'000'000'000);  // long after any quarantine
  rig.tables->process_seen(self_snapshot(101));
  rig.tables->flush();
  EXPECT_EQ(rig.metrics.total("ember_unwind_binary_loads_total"), loads);  // nothing new
  EXPECT_EQ(rig.metrics.total("ember_unwind_binaries_reused_total"), one.binaries);
  EXPECT_EQ(rig.maps->rows_written, written);
  EXPECT_EQ(rig.tables->stats().retained, 0u);
  // And the walk through the maps still finds every row.
  EXPECT_EQ(rig.tables->stats().rows, one.rows);
}

// Retention is bounded: beyond its share of the rows, the least recently
// released binaries are freed (after the quarantine, as always).
TEST(BpfUnwindTables, RetentionIsBoundedLeastRecentlyReleasedFirst) {
  Rig probe(0);
  probe.tables->process_seen(self_snapshot(1));
  probe.tables->flush();
  const auto full = probe.tables->stats();
  ASSERT_GT(full.binaries, 2u);
  // Room to retain only part of what one process maps.
  Rig rig(double(full.rows) / 2 / double(full.rows_capacity));
  rig.tables->process_seen(self_snapshot(100));
  rig.tables->flush();
  rig.tables->process_exited(100);
  rig.tables->flush();
  auto s = rig.tables->stats();
  EXPECT_GT(s.retained, 0u);
  EXPECT_LT(s.retained, full.binaries);
  EXPECT_EQ(s.binaries, s.retained);
  rig.clock.advance(2'000'000'000);
  rig.tables->process_seen(self_snapshot(101));
  rig.tables->flush();
  // Those retained are reused; the evicted ones are loaded again.
  EXPECT_EQ(rig.metrics.total("ember_unwind_binaries_reused_total"), s.retained);
  EXPECT_EQ(rig.metrics.total("ember_unwind_binary_loads_total"),
            full.binaries + (full.binaries - s.retained));
}

// A table built while its process's root was gone lacks what the debug file
// adds (deferred); once a live process maps the binary, the cache rebuilds it
// and the new rows replace the degraded ones in the maps: at once when
// the old ones are only retained, and after the last process still using
// them exits otherwise.
TEST(BpfUnwindTables, ATableRebuiltAfterADeferredLookupReplacesTheOldRows) {
  for (double retention : {0.0, 0.5}) {
    SCOPED_TRACE(retention);
    Rig rig(retention);
    const pid_t gone = 999999999;  // no such process: its root is unreachable
    rig.tables->process_seen(self_snapshot(gone));
    rig.tables->flush();
    const auto one = rig.tables->stats();
    ASSERT_GT(rig.cache.stats().debug_deferred, 0u) << "no binary here needed a debug lookup";
    if (retention > 0) {  // the first process exits: its binaries are retained
      rig.tables->process_exited(uint32_t(gone));
      rig.tables->flush();
      ASSERT_EQ(rig.tables->stats().retained, one.binaries);
    }
    rig.tables->process_seen(self_snapshot(getpid()));
    rig.tables->flush();
    const uint64_t rebuilt = rig.cache.stats().debug_retries;
    ASSERT_GT(rebuilt, 0u);
    EXPECT_EQ(rig.metrics.total("ember_unwind_binary_loads_total"), one.binaries + rebuilt);
    if (retention > 0) {
      EXPECT_EQ(rig.metrics.total("ember_unwind_binaries_reused_total"), one.binaries - rebuilt);
      EXPECT_EQ(rig.tables->stats().binaries, one.binaries);  // the degraded ones are gone
    } else {
      // Both generations are loaded while the first process lives.
      EXPECT_EQ(rig.tables->stats().binaries, one.binaries + rebuilt);
      rig.tables->process_exited(uint32_t(gone));
      rig.tables->flush();
      EXPECT_EQ(rig.tables->stats().binaries, one.binaries);
    }
    rig.tables->process_exited(uint32_t(getpid()));
    rig.tables->flush();
    EXPECT_EQ(rig.tables->stats().processes, 0u);
    EXPECT_EQ(rig.tables->stats().binaries, rig.tables->stats().retained);
    if (retention == 0) {
      EXPECT_EQ(rig.tables->stats().binaries, 0u);  // nothing leaked under either name
    }
  }
}

TEST(BpfUnwindTables, AReloadReplacesTheEntryWithoutLeaking) {
  Rig rig;
  for (int i = 0; i < 5; ++i) {
    rig.tables->process_seen(self_snapshot(100));
    rig.tables->flush();
  }
  auto s = rig.tables->stats();
  EXPECT_EQ(s.processes, 1u);
  EXPECT_EQ(rig.metrics.total("ember_unwind_process_loads_total"), 5u);
  // Old mapping runs wait in quarantine, then come back.
  rig.clock.advance(2'000'000'000);
  rig.tables->process_seen(self_snapshot(100));
  rig.tables->flush();
  EXPECT_EQ(rig.tables->stats().mapping_entries, s.mapping_entries / 5 + s.mapping_entries / 5);
}

TEST(BpfUnwindTables, ALoadGoesStaleWhenANewerSnapshotOfTheProcessIsQueued) {
  // Between fork and exec a child has its parent's mappings, and its exec
  // sends a new snapshot while the old one's tables are still being built:
  // the old load stops at the next binary and the new one goes next.
  auto parent_image = self_snapshot(100);
  int full_load = 0;  // binaries a whole load of the parent image writes
  {
    Rig whole;
    whole.tables->process_seen(parent_image);
    whole.tables->flush();
    full_load = whole.maps->binaries_written;
  }
  ASSERT_GT(full_load, 2);
  Rig rig(0.5);  // binaries no process maps stay loaded
  // The new image: this process's first file mapping only.
  auto exec_image = std::make_shared<ProcessSnapshot>(*parent_image);
  exec_image->mappings.clear();
  for (const auto& m : parent_image->mappings)
    if (m.is_file()) {
      exec_image->mappings.push_back(m);
      break;
    }
  bool queued = false;
  rig.maps->on_write_rows = [&] {
    if (queued) return;
    queued = true;
    rig.tables->process_seen(exec_image);  // from the loader thread: only queues
  };
  rig.tables->process_seen(parent_image);
  rig.tables->flush();
  EXPECT_TRUE(queued);
  EXPECT_EQ(rig.metrics.total("ember_unwind_process_loads_abandoned_total"), 1u);
  EXPECT_EQ(rig.metrics.total("ember_unwind_process_loads_total"), 1u);  // the new image only
  // The parent image stopped after its first binary (which the new image
  // maps too, and reuses); the new image's one mapping is what is published.
  EXPECT_EQ(rig.maps->binaries_written, 1) << "of " << full_load;
  ASSERT_EQ(rig.maps->procs.count(100), 1u);
  EXPECT_EQ(rig.maps->procs[100].count, exec_image->mappings.size());
  EXPECT_EQ(rig.tables->stats().processes, 1u);
  // Nothing of the abandoned load is held: with the process gone, every
  // binary is released.
  rig.tables->process_exited(100);
  rig.tables->flush();
  EXPECT_EQ(rig.tables->stats().processes, 0u);
  EXPECT_EQ(rig.tables->stats().binaries, rig.tables->stats().retained);
}

TEST(BpfUnwindTables, FullMapsAreCountedNotFatal) {
  UnwindTableCache cache({});
  ManualClock clock;
  Metrics metrics;
  auto m = std::make_unique<FakeMaps>(1, 64, 4096);  // 16384 rows: libc does not fit
  FakeMaps* maps = m.get();
  BpfUnwindTables tables(std::move(m), cache, clock, metrics);
  tables.start();
  tables.process_seen(self_snapshot(100));
  tables.flush();
  EXPECT_GT(metrics.total("ember_unwind_load_failures_total"), 0u);
  // The process is still published: its unloadable mappings fall back to
  // frame pointers.
  ASSERT_EQ(maps->procs.count(100), 1u);
  bool no_table = false;
  for (uint32_t i = 0; i < maps->procs[100].count; ++i)
    no_table |= (maps->maps[maps->procs[100].first + i].flags & EMBER_MAPPING_F_NO_TABLE) != 0;
  EXPECT_TRUE(no_table);
}

TEST(RangeAllocator, FirstFitCoalescingAndQuarantine) {
  RangeAllocator a(100);
  EXPECT_EQ(a.alloc(40), 0);
  EXPECT_EQ(a.alloc(40), 40);
  EXPECT_EQ(a.alloc(30), -1);
  a.free_later(0, 40, 10);
  EXPECT_EQ(a.alloc(30), -1);  // still quarantined
  a.release_due(5);
  EXPECT_EQ(a.alloc(30), -1);
  a.release_due(10);
  EXPECT_EQ(a.alloc(30), 0);
  a.free_later(0, 30, 0);
  a.free_later(40, 40, 0);
  a.release_due(0);
  EXPECT_EQ(a.used(), 0u);
  EXPECT_EQ(a.alloc(100), 0);  // everything coalesced back into one run
}

}  // namespace
}  // namespace ember::unwind
