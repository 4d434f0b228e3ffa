// Perf map files (/tmp/perf-PID.map): parsing, replacement of reused JIT
// memory, incremental reads, pid namespaces and the Symbolizer's use of them
// for anonymous executable memory. Fixture /proc trees stand in for real
// processes; tests/e2e covers Node.js for real.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/symbolizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

std::string name_at(const PerfMap& m, uint64_t addr) {
  const PerfMap::Entry* e = m.lookup(addr);
  return e ? e->name : "";
}

TEST(PerfMap, ParsesTheFormatsRuntimesWrite) {
  PerfMap m;
  std::string text =
      "7f1a00001000 40 LazyCompile:*fib /app/x.js:3:13\n"   // V8: hex without 0x
      "0x7f1a00002000 0x10 py::hot:/app/hot.py\n"           // with 0x
      "7f1a00003000 20 Interpreter\r\n"                     // CRLF
      "garbage line\n"
      "7f1a00004000 0 zero-size\n"
      "7f1a00005000 10\n"                                   // no name
      "7f1a00006000 10 partial";                            // no newline yet
  size_t used = m.append(text, 100);
  EXPECT_EQ(used, text.rfind('\n') + 1);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.malformed(), 3u);
  EXPECT_EQ(name_at(m, 0x7f1a00001000), "LazyCompile:*fib /app/x.js:3:13");
  EXPECT_EQ(name_at(m, 0x7f1a0000103f), "LazyCompile:*fib /app/x.js:3:13");
  EXPECT_EQ(name_at(m, 0x7f1a00001040), "");
  EXPECT_EQ(name_at(m, 0x7f1a00002008), "py::hot:/app/hot.py");
  EXPECT_EQ(name_at(m, 0x7f1a00003000), "Interpreter");
  EXPECT_EQ(name_at(m, 0x7f1a00006000), "");
  // The rest of the partial line arrives later.
  m.append("7f1a00006000 10 complete\n", 100);
  EXPECT_EQ(name_at(m, 0x7f1a00006004), "complete");
}

TEST(PerfMap, NewerCodeReplacesOverlappedRegions) {
  PerfMap m;
  m.append(
      "1000 100 a\n"
      "2000 300 c\n"
      "1080 100 b\n"   // overlaps a's tail
      "2100 100 d\n"   // inside c: c keeps both ends
      "3000 10 e\n"
      "3010 10 f\n"
      "2ff0 40 g\n",  // swallows e and f whole
      100);
  EXPECT_EQ(name_at(m, 0x1010), "a");
  EXPECT_EQ(name_at(m, 0x107f), "a");
  EXPECT_EQ(name_at(m, 0x1080), "b");
  EXPECT_EQ(name_at(m, 0x117f), "b");
  EXPECT_EQ(name_at(m, 0x2050), "c");
  EXPECT_EQ(name_at(m, 0x2150), "d");
  EXPECT_EQ(name_at(m, 0x2250), "c");
  EXPECT_EQ(name_at(m, 0x3005), "g");
  EXPECT_EQ(name_at(m, 0x3015), "g");
  EXPECT_EQ(name_at(m, 0x302f), "g");
  EXPECT_EQ(name_at(m, 0x3030), "");
}

TEST(PerfMap, BoundedEntries) {
  PerfMap m;
  std::string text;
  for (int i = 0; i < 50; ++i) {
    char line[64];
    std::snprintf(line, sizeof(line), "%x 10 f%d\n", 0x1000 + i * 0x10, i);
    text += line;
  }
  size_t used = m.append(text, 20);
  EXPECT_EQ(m.size(), 20u);
  EXPECT_TRUE(m.full());
  EXPECT_EQ(used, text.rfind('\n', text.find(" f20\n")) + 1);  // stopped before line 21
  EXPECT_GT(m.memory_bytes(), 20u * 64);
}

TEST(PerfMap, BoundedBytesAndNames) {
  PerfMap::Limits l;
  l.max_bytes = 4096;
  l.max_name = 100;
  PerfMap m;
  std::string text = "1000 10 " + std::string(5000, 'n') + "\n";
  for (int i = 1; i < 200; ++i) {
    char line[64];
    std::snprintf(line, sizeof(line), "%x 10 fn%d\n", 0x1000 + i * 0x10, i);
    text += line;
  }
  m.append(text, l);
  EXPECT_EQ(m.truncated(), 1u);
  EXPECT_EQ(name_at(m, 0x1000), std::string(100, 'n') + "...");
  EXPECT_TRUE(m.full());
  EXPECT_LE(m.memory_bytes(), 4096u);
  EXPECT_GT(m.size(), 10u);
}

// A fixture /proc: PID 77 is PID 5 in its own namespace, with its own /tmp.
class PerfMapCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ember-perfmap-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "proc/77");
    fs::create_directories(dir_ / "container/tmp");
    fs::create_directory_symlink(dir_ / "container", dir_ / "proc/77/root");
    std::ofstream(dir_ / "proc/77/status") << "Name:\tnode\nTgid:\t77\nNSpid:\t77\t5\nPPid:\t1\n";
    std::ofstream(dir_ / "proc/77/maps")
        << "7f0000000000-7f0000100000 r-xp 00000000 00:00 0 \n"
        << "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path map_path() const { return dir_ / "container/tmp/perf-5.map"; }
  void write_map(const std::string& text, bool append) {
    std::ofstream f(map_path(), append ? std::ios::app : std::ios::trunc);
    f << text;
  }
  PerfMapCache::Options opts() const {
    PerfMapCache::Options o;
    o.proc_root = (dir_ / "proc").string();
    return o;
  }
  fs::path dir_;
  ManualClock clock_;
};

TEST_F(PerfMapCacheTest, ReadsThroughTheRootUnderTheNamespacePid) {
  write_map("7f0000001000 100 JS:*hot /app/x.js:1:1\n", false);
  PerfMapCache cache(opts(), clock_);
  EXPECT_EQ(cache.lookup(77, 0x7f0000001010), "JS:*hot /app/x.js:1:1");
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().processes, 1u);
}

TEST_F(PerfMapCacheTest, ReadsOnlyWhatWasAppendedAndRechecksAtMostOncePerInterval) {
  write_map("7f0000001000 100 first\n7f0000002000 100 sec", false);  // second line unfinished
  PerfMapCache cache(opts(), clock_);
  EXPECT_EQ(cache.lookup(77, 0x7f0000001010), "first");
  EXPECT_EQ(cache.lookup(77, 0x7f0000002010), "");
  write_map("ond\n7f0000003000 100 third\n", true);
  // Within the recheck interval a miss does not touch the file.
  EXPECT_EQ(cache.lookup(77, 0x7f0000003010), "");
  EXPECT_EQ(cache.stats().reads, 1u);
  clock_.advance(200'000'000);
  EXPECT_EQ(cache.lookup(77, 0x7f0000003010), "third");
  EXPECT_EQ(cache.lookup(77, 0x7f0000002010), "second");
  EXPECT_EQ(cache.stats().reads, 2u);
  EXPECT_EQ(cache.stats().entries, 3u);
}

TEST_F(PerfMapCacheTest, ANewFileStartsOver) {
  write_map("7f0000001000 100 old\n", false);
  PerfMapCache cache(opts(), clock_);
  EXPECT_EQ(cache.lookup(77, 0x7f0000001010), "old");
  // A recycled pid: a new file (new inode) with other code.
  fs::path fresh = dir_ / "container/tmp/new.map";
  std::ofstream(fresh) << "7f0000005000 100 new\n";
  fs::rename(fresh, map_path());
  clock_.advance(200'000'000);
  EXPECT_EQ(cache.lookup(77, 0x7f0000005010), "new");
  EXPECT_EQ(cache.stats().entries, 1u) << "the old process's regions must be gone";
}

TEST_F(PerfMapCacheTest, LeastRecentlyUsedProcessesAreEvicted) {
  write_map("7f0000001000 100 f\n", false);
  PerfMapCache::Options o = opts();
  o.max_processes = 2;
  PerfMapCache cache(o, clock_);
  cache.lookup(77, 0x7f0000001010);
  cache.lookup(78, 0x1);
  cache.lookup(77, 0x7f0000001010);  // 77 is the most recent
  cache.lookup(79, 0x1);             // evicts 78
  auto s = cache.stats();
  EXPECT_EQ(s.processes, 2u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(cache.lookup(77, 0x7f0000001010), "f");
  EXPECT_EQ(cache.stats().reads, 1u) << "77 must not have been evicted and re-read";
}

// A workload's perf map of ten million lines (140 MB) costs one bounded
// read: at most 16 MiB parsed per refresh, at most 64 MiB held, and once
// full the file is not read again.
TEST_F(PerfMapCacheTest, TenMillionLinesAreBounded) {
  {
    std::ofstream f(map_path(), std::ios::trunc | std::ios::binary);
    std::string chunk;
    char line[48];
    for (uint64_t i = 0; i < 10'000'000; ++i) {
      int n = std::snprintf(line, sizeof(line), "%llx 10 f\n", (unsigned long long)(0x100000000ull + i * 16));
      chunk.append(line, size_t(n));
      if (chunk.size() > (4u << 20)) {
        f << chunk;
        chunk.clear();
      }
    }
    f << chunk;
  }
  ASSERT_GT(fs::file_size(map_path()), 100u << 20);
  PerfMapCache cache(opts(), clock_);
  EXPECT_EQ(cache.lookup(77, 0x100000008), "f");
  auto s = cache.stats();
  EXPECT_EQ(s.reads, 1u);
  EXPECT_EQ(s.filled, 1u);
  EXPECT_LE(s.bytes, size_t(64) << 20);
  EXPECT_GT(s.entries, 500'000u);
  // Full: later misses, however many, do not read the file again.
  for (int i = 0; i < 20; ++i) {
    clock_.advance(200'000'000);
    EXPECT_EQ(cache.lookup(77, 0x100000000ull + 9'999'999ull * 16), "");
  }
  EXPECT_EQ(cache.stats().reads, 1u);
}

// Several maps share one byte budget: past it, the least recently used
// maps are dropped, never the one just read.
TEST_F(PerfMapCacheTest, MapsShareAByteBudget) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    char line[64];
    std::snprintf(line, sizeof(line), "%x 10 function_number_%d\n", 0x10000 + i * 16, i);
    text += line;
  }
  for (int pid : {78, 79, 80}) {
    fs::create_directories(dir_ / ("proc/" + std::to_string(pid)));
    fs::create_directory_symlink(dir_ / "container", dir_ / ("proc/" + std::to_string(pid) + "/root"));
    std::ofstream(dir_ / ("container/tmp/perf-" + std::to_string(pid) + ".map")) << text;
  }
  PerfMapCache::Options o = opts();
  o.max_total_bytes = 250'000;  // about two of these maps
  PerfMapCache cache(o, clock_);
  EXPECT_EQ(cache.lookup(78, 0x10000), "function_number_0");
  EXPECT_EQ(cache.lookup(79, 0x10000), "function_number_0");
  EXPECT_EQ(cache.lookup(80, 0x10000), "function_number_0");
  auto s = cache.stats();
  EXPECT_EQ(s.evicted_for_bytes, 1u);
  EXPECT_EQ(s.processes, 2u);
  EXPECT_LE(s.bytes, 250'000u);
}

TEST_F(PerfMapCacheTest, SymbolizerNamesAnonymousExecutableMemory) {
  write_map("7f0000001000 100 LazyCompile:*fib /app/x.js:3:13\n", false);
  SymbolizerOptions so;
  so.proc_root = (dir_ / "proc").string();
  so.clock = &clock_;
  Symbolizer sym(so);
  auto snap = read_process_snapshot(so.proc_root, 77);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  UserSymbol leaf = sym.resolve_user(**snap, 0x7f0000001010, /*return_address=*/false);
  EXPECT_TRUE(leaf.jit);
  EXPECT_EQ(leaf.function, "LazyCompile:*fib /app/x.js:3:13");
  // A return address just past the region's end is the region's call.
  UserSymbol caller = sym.resolve_user(**snap, 0x7f0000001100, /*return_address=*/true);
  EXPECT_EQ(caller.function, "LazyCompile:*fib /app/x.js:3:13");
  // Code mapped after the snapshot (no mapping in it) is looked up too.
  write_map("7f0000300000 100 late\n", true);
  clock_.advance(200'000'000);
  EXPECT_EQ(sym.resolve_user(**snap, 0x7f0000300010, false).function, "late");
  // Turned off: nothing.
  so.perf_maps = false;
  Symbolizer off(so);
  EXPECT_EQ(off.resolve_user(**snap, 0x7f0000001010, false).function, "");
}

}  // namespace
}  // namespace ember
