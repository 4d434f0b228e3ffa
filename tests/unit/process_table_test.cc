// ProcessTable against a /proc tree built by hand (the root is injected) and
// a manual clock.
#include "agent/process/process_table.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <set>

#include <filesystem>
#include <fstream>

namespace ember {
namespace {

namespace fs = std::filesystem;

class ProcessTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ember-pt-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void write_process(uint32_t pid, const std::string& maps, const std::string& comm) {
    fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir);
    std::ofstream(dir / "maps") << maps;
    std::ofstream(dir / "comm") << comm << "\n";
  }
  void remove_process(uint32_t pid) { fs::remove_all(root_ / std::to_string(pid)); }

  ProcessTable::Options opts() {
    ProcessTable::Options o;
    o.proc_root = root_.string();
    return o;
  }

  fs::path root_;
  ManualClock clock_;
  Metrics metrics_;
};

const char* kMapsA =
    "00400000-00401000 r-xp 00000000 08:01 11 /usr/bin/app\n"
    "7f0000000000-7f0000001000 r-xp 00000000 08:01 22 /usr/lib/liba.so\n";
const char* kMapsB =
    "00400000-00401000 r-xp 00000000 08:01 11 /usr/bin/app\n"
    "7f0000000000-7f0000001000 r-xp 00000000 08:01 22 /usr/lib/liba.so\n"
    "7f0000100000-7f0000101000 r-xp 00000000 08:01 33 /usr/lib/plugin.so\n";

TEST_F(ProcessTableTest, SnapshotIsReadOnceAndShared) {
  write_process(10, kMapsA, "app");
  ProcessTable t(opts(), clock_, metrics_);
  auto a = t.snapshot_for(10);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->maps_ok);
  EXPECT_EQ(a->comm, "app");
  EXPECT_EQ(a->mappings.size(), 2u);
  EXPECT_EQ(t.snapshot_for(10).get(), a.get());
  EXPECT_EQ(metrics_.total("ember_process_snapshots_total"), 1u);
}

TEST_F(ProcessTableTest, ExecMakesANewGenerationWithItsHint) {
  write_process(10, kMapsA, "app");
  ProcessTable t(opts(), clock_, metrics_);
  auto before = t.snapshot_for(10);
  ExecEvent ev;
  ev.pid = 10;
  ev.hint.inode = 99;
  ev.hint.start_code = 0x400000;
  ev.hint.end_code = 0x401000;
  ev.hint.entry = 0x400100;
  ev.filename = "/usr/bin/other";
  t.on_exec(ev);
  auto after = t.snapshot_for(10);
  ASSERT_TRUE(after);
  EXPECT_NE(after.get(), before.get());
  EXPECT_EQ(after->generation, before->generation + 1);
  ASSERT_TRUE(after->exec_hint.has_value());
  EXPECT_EQ(after->exec_hint->entry, 0x400100u);
  // The old snapshot is untouched: samples taken before the exec keep it.
  EXPECT_FALSE(before->exec_hint.has_value());
}

TEST_F(ProcessTableTest, ExitForgetsTheProcessButSamplesKeepTheirSnapshot) {
  write_process(10, kMapsA, "app");
  ProcessTable t(opts(), clock_, metrics_);
  auto held = t.snapshot_for(10);
  EXPECT_EQ(t.size(), 1u);
  t.on_exit(ExitEvent{10, 0});
  remove_process(10);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(held->mappings.size(), 2u);  // still valid
  EXPECT_EQ(held->find(0x400010)->path, "/usr/bin/app");
}

TEST_F(ProcessTableTest, AProcessGoneBeforeItsFirstSampleKeepsTheExecHint) {
  ProcessTable t(opts(), clock_, metrics_);
  ExecEvent ev;
  ev.pid = 20;
  ev.hint.start_code = 0x1000;
  ev.hint.end_code = 0x2000;
  ev.hint.entry = 0x1010;
  ev.filename = "/usr/bin/brief";
  t.on_exec(ev);  // /proc/20 never existed here
  auto s = t.snapshot_for(20);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->maps_ok);
  ASSERT_TRUE(s->exec_hint.has_value());
  EXPECT_EQ(s->exec_hint->start_code, 0x1000u);
  EXPECT_EQ(s->exe_path, "/usr/bin/brief");
  EXPECT_EQ(metrics_.total("ember_process_snapshot_failures_total"), 1u);
  // A failed read is not retried on every sample...
  EXPECT_EQ(t.snapshot_for(20).get(), s.get());
  EXPECT_EQ(metrics_.total("ember_process_snapshot_failures_total"), 1u);
  // ...but is after the refresh interval.
  clock_.advance(2'000'000'000);
  t.snapshot_for(20);
  EXPECT_EQ(metrics_.total("ember_process_snapshot_failures_total"), 2u);
}

TEST_F(ProcessTableTest, RefreshAfterAMissIsRateLimitedAndGenerationChecked) {
  write_process(10, kMapsA, "app");
  ProcessTable t(opts(), clock_, metrics_);
  auto a = t.snapshot_for(10);
  write_process(10, kMapsB, "app");  // a plugin was dlopen'ed
  EXPECT_EQ(t.refresh(*a), nullptr);  // too soon after the first read
  clock_.advance(1'500'000'000);
  auto b = t.refresh(*a);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mappings.size(), 3u);
  EXPECT_EQ(t.snapshot_for(10).get(), b.get());
  // Someone else already refreshed: the newer snapshot, no re-read.
  EXPECT_EQ(t.refresh(*a).get(), b.get());
  // After an exec, an old snapshot is a different image: no refresh.
  t.on_exec(ExecEvent{10, 0, {}, "app", "/usr/bin/app"});
  clock_.advance(2'000'000'000);
  EXPECT_EQ(t.refresh(*b), nullptr);
}

TEST_F(ProcessTableTest, AnUnmappedAddressAtDrainTimeRereadsAtOnceThenBacksOff) {
  write_process(10, kMapsA, "app");
  ProcessTable t(opts(), clock_, metrics_);
  auto a = t.snapshot_for(10, {0x400010});
  // The dynamic loader maps a library after the first snapshot.
  write_process(10, kMapsB, "app");
  clock_.advance(3'000'000);
  auto b = t.snapshot_for(10, {0x7f0000100010, 0x400010});
  ASSERT_NE(b.get(), a.get());
  EXPECT_TRUE(b->find(0x7f0000100010));
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 1u);
  // A stray address that no re-read covers: re-read once, then back off.
  clock_.advance(3'000'000);
  t.snapshot_for(10, {0x10});
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 2u);
  clock_.advance(1'000'000);
  t.snapshot_for(10, {0x10});
  t.snapshot_for(10, {0x10});
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 2u);
  clock_.advance(5'000'000);
  t.snapshot_for(10, {0x10});
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 3u);
  // Covered addresses never cause a read.
  clock_.advance(5'000'000'000);
  t.snapshot_for(10, {0x400010});
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 3u);
}

// A new process's samples carry stack copies (its tables are not loaded
// yet) whose only address BPF recorded is the pc, in the executable. The
// walk of the copy, later, needs libc; the snapshot read before the loader
// mapped it must be re-read while the process still exists.
TEST_F(ProcessTableTest, AStackCopyTakenAfterTheSnapshotRereadsAtDrainTime) {
  write_process(10, kMapsA, "app");
  clock_.advance(1'000'000'000);
  ProcessTable t(opts(), clock_, metrics_);
  auto a = t.snapshot_for(10, {0x400010}, clock_.monotonic_ns() - 1000);
  EXPECT_EQ(metrics_.total("ember_process_copy_rereads_total"), 0u);  // copy predates the read
  write_process(10, kMapsB, "app");
  clock_.advance(3'000'000);
  // Taken after the first read: its pc is covered, yet the maps are read again.
  auto b = t.snapshot_for(10, {0x400010}, clock_.monotonic_ns() - 1000);
  ASSERT_NE(b.get(), a.get());
  EXPECT_TRUE(b->find(0x7f0000100010));
  EXPECT_EQ(metrics_.total("ember_process_copy_rereads_total"), 1u);
  // Copies taken just before each drain, `after_ns` apart: how many re-reads so far.
  auto copy_after = [&](uint64_t after_ns) {
    clock_.advance(after_ns);
    t.snapshot_for(10, {0x400010}, clock_.monotonic_ns() - 1);
    return metrics_.total("ember_process_copy_rereads_total");
  };
  // The maps changed, so the next newer copy may read again at once ...
  EXPECT_EQ(copy_after(1'000), 2u);
  // ... but that read found nothing new: back off (2 ms, then doubling).
  EXPECT_EQ(copy_after(1'000'000), 2u);
  EXPECT_EQ(copy_after(1'500'000), 3u);
  EXPECT_EQ(copy_after(3'000'000), 3u);
  // A copy older than the last read, or no copy, never reads.
  clock_.advance(5'000'000'000);
  t.snapshot_for(10, {0x400010}, 1);
  t.snapshot_for(10, {0x400010});
  EXPECT_EQ(metrics_.total("ember_process_copy_rereads_total"), 3u);
  EXPECT_EQ(metrics_.total("ember_process_miss_rereads_total"), 0u);
  // Gone since: the last snapshot stays.
  auto last = t.snapshot_for(10, {0x400010}, clock_.monotonic_ns() - 1);
  remove_process(10);
  clock_.advance(2'000'000'000);
  EXPECT_EQ(t.snapshot_for(10, {0x400010}, clock_.monotonic_ns() - 1).get(), last.get());
}

TEST_F(ProcessTableTest, PinsUnknownFilesWithinABudget) {
  // Real files, so they can be opened: this test binary and libc.
  std::string self = fs::read_symlink("/proc/self/exe").string();
  struct stat st{};
  ASSERT_EQ(::stat(self.c_str(), &st), 0);
  char maps[512];
  std::snprintf(maps, sizeof(maps), "00400000-00401000 r-xp 00000000 %02x:%02x %llu %s\n",
                major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino, self.c_str());
  auto o = opts();
  std::set<uint64_t> known;
  o.file_known = [&known](uint64_t, uint64_t ino) { return known.count(ino) > 0; };
  o.max_pinned_total = 2;
  ProcessTable t(o, clock_, metrics_);
  std::vector<std::shared_ptr<const ProcessSnapshot>> held;
  for (uint32_t pid = 1; pid <= 3; ++pid) {
    write_process(pid, maps, "self");
    held.push_back(t.snapshot_for(pid));
  }
  // Our fixture /proc has no map_files or root, so pinning went through the
  // absolute path under <root>/<pid>/root: not present either.
  size_t pinned = 0;
  for (const auto& h : held)
    for (const auto& p : h->pinned) pinned += p ? 1 : 0;
  EXPECT_EQ(pinned, 0u);
  // With a root link to "/", the file opens and is pinned, up to the budget.
  for (uint32_t pid = 4; pid <= 7; ++pid) {
    write_process(pid, maps, "self");
    fs::create_directory_symlink("/", root_ / std::to_string(pid) / "root");
    held.push_back(t.snapshot_for(pid));
  }
  pinned = 0;
  for (const auto& h : held)
    for (const auto& p : h->pinned) pinned += p ? 1 : 0;
  EXPECT_EQ(pinned, 2u);
  EXPECT_EQ(metrics_.total("ember_files_not_pinned_total"), 2u);
  // Releasing pins (the symbolizer does once it parsed the file) frees budget.
  for (const auto& h : held)
    for (const auto& p : h->pinned)
      if (p) p->release(kPinSymbolizer);
  write_process(8, maps, "self");
  fs::create_directory_symlink("/", root_ / "8" / "root");
  auto again = t.snapshot_for(8);
  ASSERT_EQ(again->pinned.size(), 1u);
  ASSERT_TRUE(again->pinned[0]);
  EXPECT_GE(again->pinned[0]->fd(), 0);
  // Files the symbolizer knows are never pinned.
  known.insert(st.st_ino);
  write_process(9, maps, "self");
  fs::create_directory_symlink("/", root_ / "9" / "root");
  auto known_snap = t.snapshot_for(9);
  EXPECT_FALSE(known_snap->pinned[0]);
}

TEST_F(ProcessTableTest, BoundedByMaxProcesses) {
  auto o = opts();
  o.max_processes = 16;
  ProcessTable t(o, clock_, metrics_);
  for (uint32_t pid = 100; pid < 140; ++pid) {
    write_process(pid, kMapsA, "p");
    clock_.advance(1000);
    ASSERT_TRUE(t.snapshot_for(pid));
  }
  EXPECT_LE(t.size(), 16u);
  EXPECT_GT(metrics_.total("ember_processes_evicted_total"), 0u);
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Process roots: held from the first snapshot, shared by processes of the
// same root, still usable after the process is gone, and bounded.
class ProcessRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("ember-roots-" + std::to_string(getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_ / "proc");
  }
  void TearDown() override { fs::remove_all(base_); }
  // PID with /proc/PID/root -> base/<root>, where root/marker names it.
  void add(uint32_t pid, const std::string& root) {
    fs::create_directories(base_ / root);
    std::ofstream(base_ / root / "marker") << root;
    fs::path dir = base_ / "proc" / std::to_string(pid);
    fs::create_directories(dir);
    std::ofstream(dir / "maps") << "00400000-00401000 r-xp 00000000 08:01 11 /usr/bin/app\n";
    fs::create_directory_symlink(base_ / root, dir / "root");
  }
  // A table over this fixture's /proc holding at most `max_roots` roots.
  ProcessTable::Options options(size_t max_roots) const {
    ProcessTable::Options o;
    o.proc_root = (base_ / "proc").string();
    o.max_roots = max_roots;
    return o;
  }
  fs::path base_;
  ManualClock clock_;
  Metrics metrics_;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST_F(ProcessRootsTest, SharedAcrossProcessesKeptAfterExitAndBounded) {
  add(10, "host");
  add(11, "host");
  add(12, "container");
  add(13, "other");
  ProcessTable t(options(2), clock_, metrics_);
  auto a = t.snapshot_for(10), b = t.snapshot_for(11), c = t.snapshot_for(12);
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(a->root && c->root);
  EXPECT_EQ(a->root.get(), b->root.get());  // one descriptor for one root
  EXPECT_NE(a->root.get(), c->root.get());
  // The process is gone; its root is still reachable through the snapshot.
  fs::remove_all(base_ / "proc" / "12");
  EXPECT_EQ(read_all(c->root_path() + "/marker"), "container");
  EXPECT_NE(c->root_path().find("/proc/self/fd/"), std::string::npos);
  // A third distinct root is over the bound: not held, and counted.
  auto d = t.snapshot_for(13);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->root);
  EXPECT_EQ(metrics_.total("ember_process_roots_not_held_total"), 1u);
}

// A full set of roots whose processes have all gone makes room again: the
// bound counts roots held now, not roots ever held.
TEST_F(ProcessRootsTest, RootsFreedAtTheBoundAreHeldAgain) {
  add(10, "one");
  add(11, "two");
  add(12, "three");
  ProcessTable t(options(2), clock_, metrics_);
  {
    auto a = t.snapshot_for(10), b = t.snapshot_for(11);
    ASSERT_TRUE(a && b && a->root && b->root);
  }
  for (uint32_t pid : {10u, 11u}) {
    ExitEvent ev;
    ev.pid = pid;
    t.on_exit(ev);
  }
  auto c = t.snapshot_for(12);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->root);
  EXPECT_EQ(metrics_.total("ember_process_roots_not_held_total"), 0u);
}

}  // namespace
}  // namespace ember
