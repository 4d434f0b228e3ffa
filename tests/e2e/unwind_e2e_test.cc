// The table-driven BPF unwinder end to end, as root: workloads built without
// frame pointers (-O2 -fomit-frame-pointer), through Debian's own libc (which
// has none either), threads, deep recursion, signal handlers, processes too
// short-lived for their tables to be loaded before they exit, and a stripped
// Go binary (rules from .gopclntab).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "e2e_util.h"

namespace ember::e2e {
namespace {

class UnwindE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
};

struct Profile {
  std::vector<FoldedStack> stacks;
  uint64_t total = 0;
};

Profile record(const TempDir& tmp, std::vector<std::string> cmd, int hz = 499) {
  std::vector<std::string> argv = {ember_bin(), "record", "--unwinder", "tables", "-F",
                                   std::to_string(hz), "-o", tmp / "out.folded", "--"};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  auto r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Profile p;
  p.stacks = parse_folded(read_file(tmp / "out.folded"));
  for (const auto& s : p.stacks) p.total += s.count;
  return p;
}

// The stack reached the start of the program: the first frame under the
// thread name is _start (main thread).
bool reaches_start(const FoldedStack& s) { return s.frames.size() > 1 && s.frames[1] == "_start"; }

std::string text(const FoldedStack& s) {
  std::string t;
  for (const auto& f : s.frames) t += f + ";";
  return t;
}

TEST_F(UnwindE2E, NoFramePointersFullChainsAndTrueShares) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("unwind_nofp"), "ratio", "8"});
  uint64_t complete = 0, leaf = 0, chain[3] = {};
  const char* callers[3] = {"caller_a", "caller_b", "caller_c"};
  for (const auto& s : p.stacks) {
    if (reaches_start(s) && s.contains("main")) complete += s.count;
    if (!s.contains("leaf")) continue;
    leaf += s.count;
    for (int i = 0; i < 3; ++i)
      if (s.has_chain({"main", "run", callers[i], "leaf"})) chain[i] += s.count;
  }
  uint64_t full = chain[0] + chain[1] + chain[2];
  std::printf("[ info ] %llu samples, %llu complete to _start; leaf %llu, full chain %llu: "
              "a=%llu b=%llu c=%llu\n",
              (unsigned long long)p.total, (unsigned long long)complete, (unsigned long long)leaf,
              (unsigned long long)full, (unsigned long long)chain[0], (unsigned long long)chain[1],
              (unsigned long long)chain[2]);
  ASSERT_GT(p.total, 3000u);
  expect_share_at_least("complete", double(complete), double(p.total), 0.99);
  expect_share_at_least("full_chain_of_leaf", double(full), double(leaf), 0.99);
  const double truth[3] = {0.6, 0.3, 0.1};
  for (int i = 0; i < 3; ++i)
    expect_share_binomial(std::string("share_") + callers[i], double(chain[i]), double(full), truth[i]);
}

TEST_F(UnwindE2E, CallbackFromLibcQsortUnwindsBackToMain) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("unwind_nofp"), "qsort", "4"});
  uint64_t in_cmp = 0, through = 0, complete = 0;
  for (const auto& s : p.stacks) {
    if (reaches_start(s)) complete += s.count;
    if (!s.contains("compare_slow")) continue;
    in_cmp += s.count;
    // compare_slow is called from inside libc's sort, called by qsort_r.
    if (s.has_chain({"main", "sort_numbers", "qsort_r"}) && reaches_start(s)) through += s.count;
    else ADD_FAILURE() << "incomplete: " << text(s);
  }
  std::printf("[ info ] %llu samples, %llu in compare_slow, %llu of those through libc to main\n",
              (unsigned long long)p.total, (unsigned long long)in_cmp, (unsigned long long)through);
  ASSERT_GT(in_cmp, 1000u);
  expect_share_at_least("through_libc_to_main", double(through), double(in_cmp), 0.99);
  expect_share_at_least("complete", double(complete), double(p.total), 0.99);
}

TEST_F(UnwindE2E, EveryThreadUnwindsToItsStart) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("unwind_nofp"), "threads", "4"});
  uint64_t per[3] = {}, spin = 0;
  const char* workers[3] = {"worker_a", "worker_b", "worker_c"};
  for (const auto& s : p.stacks) {
    if (!s.contains("spin_in")) continue;
    spin += s.count;
    // A thread's outermost frames are libc's clone3 and start_thread; the
    // walk ends there on clone3's end-of-stack marker, right above the worker.
    for (int i = 0; i < 3; ++i)
      if (s.has_chain({workers[i], "spin_in"}) && s.frames.size() >= 4) per[i] += s.count;
  }
  std::printf("[ info ] %llu samples in spin_in: a=%llu b=%llu c=%llu\n", (unsigned long long)spin,
              (unsigned long long)per[0], (unsigned long long)per[1], (unsigned long long)per[2]);
  ASSERT_GT(spin, 1500u);  // three threads on two CPUs for 4 s at 499 Hz
  expect_share_at_least("thread_to_start", double(per[0] + per[1] + per[2]), double(spin), 0.99);
  for (int i = 0; i < 3; ++i) {
    report_figure(std::string("share_") + workers[i], double(per[i]) / double(spin));
    EXPECT_GT(per[i], spin / 5) << workers[i];
  }
}

TEST_F(UnwindE2E, DeepRecursionOfAHundredFrames) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("unwind_nofp"), "recurse", "3"});
  uint64_t deep = 0, spin = 0;
  for (const auto& s : p.stacks) {
    if (!s.contains("spin")) continue;
    spin += s.count;
    size_t n = 0;
    for (const auto& f : s.frames) n += f == "recurse";
    if (n >= 100 && reaches_start(s) && s.contains("main")) deep += s.count;
  }
  std::printf("[ info ] %llu samples in spin, %llu with all 101 recursion frames to _start\n",
              (unsigned long long)spin, (unsigned long long)deep);
  ASSERT_GT(spin, 1000u);
  expect_share_at_least("all_frames", double(deep), double(spin), 0.99);
}

TEST_F(UnwindE2E, SignalHandlerUnwindsThroughTheTrampoline) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("unwind_nofp"), "signal", "3"});
  uint64_t in_handler = 0, through = 0;
  for (const auto& s : p.stacks) {
    if (!s.contains("handler")) continue;
    in_handler += s.count;
    if (s.has_chain({"main", "wait_for_signal"}) && reaches_start(s)) through += s.count;
    else ADD_FAILURE() << "incomplete: " << text(s);
  }
  std::printf("[ info ] %llu samples in the handler, %llu unwound into the interrupted code\n",
              (unsigned long long)in_handler, (unsigned long long)through);
  ASSERT_GT(in_handler, 500u);  // the alarm fires after 1 s of 3
  expect_share_at_least("through_signal_frame", double(through), double(in_handler), 0.99);
}

// New processes: their first samples arrive before their tables are in BPF,
// so BPF hands over a stack copy that user space unwinds with the same tables.
// Short-lived processes without frame pointers: their tables are not loaded
// into BPF before most of their samples are taken, so user space finishes
// those walks from the stack copies. Every user-space sample after the exec
// must still be named and reach _start.
TEST_F(UnwindE2E, ShortLivedProcessesWithoutFramePointersAreComplete) {
  TempDir tmp;
  Profile p = record(tmp, {fixture("exec_driver"), "150", fixture("short_lived_nofp"), "30"}, 199);
  auto f = judge_short_lived(p.stacks, "short_lived_nof");  // comm is 15 characters
  std::printf("[ info ] %llu user samples of short-lived processes: %llu named, %llu complete to "
              "_start, %llu both\n",
              (unsigned long long)f.user, (unsigned long long)f.named, (unsigned long long)f.complete,
              (unsigned long long)f.named_and_complete);
  for (const auto& b : f.bad) std::printf("[ info ]   not named and complete: %s\n", b.c_str());
  ASSERT_GT(f.user, 400u);
  expect_share_at_least("named_and_complete", double(f.named_and_complete), double(f.user), 0.99);
}

// How a Go profile's samples unwound. A stack's outermost frame says whose it
// is: runtime.goexit then runtime.main is the main goroutine; goexit alone
// another goroutine (GC workers, the sweeper); the stack tops of threads
// (mstart, rt0_go), of the Go signal handler (sigtramp) and the stack
// switches the tables end at (mcall, systemstack, ...) are the system
// stacks. Everything else is a walk that stopped early.
struct GoShares {
  uint64_t total = 0, main_goroutine = 0, main_complete = 0, other_goroutines = 0, system = 0;
  uint64_t burn = 0, burn_under_main = 0;
  std::map<std::string, uint64_t> incomplete_roots;

  explicit GoShares(const std::vector<FoldedStack>& stacks) {
    const std::set<std::string> system_tops = {"runtime.mstart",      "runtime.rt0_go",  "runtime.sigtramp",
                                               "runtime.mcall",       "runtime.morestack", "runtime.gogo",
                                               "runtime.systemstack", "runtime.asmcgocall"};
    for (const auto& s : stacks) {
      // comm is cut to 15 characters by the kernel.
      if (s.frames.size() < 2 || s.frames[0] != "go_workload_str") continue;
      total += s.count;
      const std::string& root = s.frames[1];
      const bool under_main = root == "runtime.goexit" && s.frames.size() > 2 && s.frames[2] == "runtime.main";
      if (s.contains("main.burn")) {
        burn += s.count;
        // burn (never inlined) is called by main.main, called by runtime.main.
        if (under_main && s.has_chain({"runtime.main", "main.main", "main.burn"})) burn_under_main += s.count;
      }
      if (under_main) {
        main_goroutine += s.count;
        main_complete += s.count;
      } else if (root == "runtime.goexit") {
        other_goroutines += s.count;
      } else if (system_tops.count(root)) {
        system += s.count;
      } else {
        main_goroutine += s.count;  // unknown: counted against the main goroutine
        incomplete_roots[root] += s.count;
      }
    }
  }
  std::string summary() const {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "%llu samples: main goroutine %llu (%.2f%% complete to runtime.goexit), other goroutines "
                  "%llu, system stacks %llu; main.burn %llu (%.2f%% with runtime.main;main.main;main.burn)",
                  (unsigned long long)total, (unsigned long long)main_goroutine,
                  100.0 * double(main_complete) / double(std::max<uint64_t>(main_goroutine, 1)),
                  (unsigned long long)other_goroutines, (unsigned long long)system, (unsigned long long)burn,
                  100.0 * double(burn_under_main) / double(std::max<uint64_t>(burn, 1)));
    std::string s = buf;
    if (!incomplete_roots.empty()) s += "; stopped early at:";
    for (const auto& [root, n] : incomplete_roots) s += " " + root + "=" + std::to_string(n);
    return s;
  }
};

// A stripped Go binary has neither .eh_frame nor .debug_frame: its rules come
// from the SP deltas in .gopclntab. main.burn is a frameless leaf (no saved
// rbp), so a frame-pointer walk from it reads main.main's frame pointer and
// skips main.main; the tables must not. The frame-pointer profile is
// recorded too, for comparison (printed, not asserted).
TEST_F(UnwindE2E, StrippedGoBinaryKeepsTheCallersOfFramelessFunctions) {
  const std::string bin = fixture("go_workload_stripped");
  if (access(bin.c_str(), X_OK) != 0) FAIL() << "go_workload_stripped was not built (needs golang-go)";
  TempDir tmp;
  Profile p = record(tmp, {bin, "4"});
  GoShares tables(p.stacks);
  std::printf("[ info ] --unwinder tables: %s\n", tables.summary().c_str());

  auto r = run({ember_bin(), "record", "--unwinder", "fp", "-F", "499", "-o", tmp / "fp.folded", "--", bin, "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  GoShares fp(parse_folded(read_file(tmp / "fp.folded")));
  std::printf("[ info ] --unwinder fp:     %s\n", fp.summary().c_str());

  ASSERT_GT(tables.total, 1500u);
  ASSERT_GT(tables.burn, 500u);
  expect_share_at_least("burn_under_main", double(tables.burn_under_main), double(tables.burn), 0.99);
  expect_share_at_least("main_goroutine_complete", double(tables.main_complete), double(tables.main_goroutine), 0.99);
}

}  // namespace
}  // namespace ember::e2e
