// Off-CPU and wall-clock profiles end to end, as root, with real BPF,
// against a workload that measures its own truth (fixtures/offcpu_workload.c:
// a main thread that sleeps in one function, blocks on a pipe in another and
// burns CPU in a third, timing each).
#include <gtest/gtest.h>

#include <regex>

#include "e2e_util.h"

namespace ember::e2e {
namespace {

class OffCpuE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
};

// The workload's own figures, from the JSON line it prints (nanoseconds).
struct Truth {
  double sleep_ns = 0, pipe_ns = 0, burn_ns = 0, burn_cpu_ns = 0, total_ns = 0;
};

Truth parse_truth(const std::string& out) {
  Truth t;
  auto field = [&](const char* name) {
    std::smatch m;
    std::string pattern = std::string("\"") + name + "\": ([0-9]+)";
    if (!std::regex_search(out, m, std::regex(pattern))) {
      ADD_FAILURE() << "no " << name << " in the workload's output: " << out;
      return 0.0;
    }
    return std::stod(m[1]);
  };
  t.sleep_ns = field("sleep_ns");
  t.pipe_ns = field("pipe_ns");
  t.burn_ns = field("burn_ns");
  t.burn_cpu_ns = field("burn_cpu_ns");
  t.total_ns = field("total_ns");
  return t;
}

// The main thread's amounts (folded values: microseconds) under each of
// the three functions, and how much of each waiting one has the kernel's
// reason below it: the sleep under a nanosleep function, the pipe wait under
// a pipe read. (The kernel's walk of a task that is not running leaves out
// the scheduler's own functions, schedule and do_nanosleep among them:
// stacks end at the function that called into it.)
struct MainThread {
  double sleep = 0, pipe = 0, burn = 0, all = 0;
  double sleep_with_reason = 0, pipe_with_reason = 0;
};

bool has_kernel_frame_containing(const FoldedStack& s, const std::string& part) {
  for (const auto& f : s.frames)
    if (is_kernel_frame(f) && f.find(part) != std::string::npos) return true;
  return false;
}

MainThread judge(const std::vector<FoldedStack>& stacks) {
  MainThread m;
  for (const auto& s : stacks) {
    if (s.frames.empty() || s.frames[0] != "offcpu_workload") continue;
    double v = double(s.count);
    m.all += v;
    if (s.contains("sleeps_here")) {
      m.sleep += v;
      if (has_kernel_frame_containing(s, "nanosleep")) m.sleep_with_reason += v;
    } else if (s.contains("waits_on_pipe")) {
      m.pipe += v;
      if (has_kernel_frame_containing(s, "pipe_read")) m.pipe_with_reason += v;
    } else if (s.contains("burns_here")) {
      m.burn += v;
    }
  }
  return m;
}

std::string dump(const std::vector<FoldedStack>& stacks, size_t max = 12) {
  std::string out;
  for (const auto& s : stacks) {
    if (max-- == 0) break;
    for (const auto& f : s.frames) out += f + ";";
    out += " " + std::to_string(s.count) + "\n";
  }
  return out;
}

// Each wait, in microseconds, within 10% of what the workload measured, and
// with the kernel's reason for it (a nanosleep, a pipe read) in its stacks.
TEST_F(OffCpuE2E, EachWaitIsMeasuredUnderItsFunctionWithTheKernelsReasonBelowIt) {
  TempDir tmp;
  auto r = run({ember_bin(), "record", "--profile", "off-cpu", "-v", "-o", tmp / "out.folded", "--",
                fixture("offcpu_workload"), "40", "20", "15", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Truth t = parse_truth(r.out);
  auto stacks = parse_folded(read_file(tmp / "out.folded"));
  MainThread m = judge(stacks);
  ASSERT_GT(m.all, 0) << r.err << dump(stacks);

  const double sleep_us = t.sleep_ns / 1000, pipe_us = t.pipe_ns / 1000;
  report_figure("sleep_of_truth", m.sleep / sleep_us);
  report_figure("pipe_of_truth", m.pipe / pipe_us);
  EXPECT_NEAR(m.sleep, sleep_us, 0.10 * sleep_us) << dump(stacks);
  EXPECT_NEAR(m.pipe, pipe_us, 0.10 * pipe_us) << dump(stacks);
  expect_share_at_least("sleep_with_reason", m.sleep_with_reason, m.sleep, 0.95);
  expect_share_at_least("pipe_with_reason", m.pipe_with_reason, m.pipe, 0.95);
  // A CPU-bound function waits only when preempted, in the run queue, and
  // run-queue waits are counted, not profiled: none of its time may show
  // (it makes no system call an owed sample could be sent from).
  EXPECT_EQ(m.burn, 0) << dump(stacks);
}

// Wall clock: per thread, time on CPU (samples x period) and time waiting
// in system calls added up. Each function's share of the main thread within
// 3 points of the workload's own clocks: the two waits' wall time, and the
// burn's CPU time. (Time spent runnable in the run queue is not in the
// profile yet: on a busy machine the burn's wall time is longer than its
// CPU time, and that difference is counted, not profiled.)
TEST_F(OffCpuE2E, WallClockSharesMatchTheWorkloadsOwnClocks) {
  TempDir tmp;
  auto r = run({ember_bin(), "record", "--profile", "wall", "-F", "499", "-v", "-o",
                tmp / "out.folded", "--", fixture("offcpu_workload"), "60", "20", "15", "15"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Truth t = parse_truth(r.out);
  auto stacks = parse_folded(read_file(tmp / "out.folded"));
  MainThread m = judge(stacks);
  ASSERT_GT(m.all, 0) << r.err << dump(stacks);

  const double whole = t.sleep_ns + t.pipe_ns + t.burn_cpu_ns;
  const double measured = m.sleep + m.pipe + m.burn;
  struct {
    const char* name;
    double got, truth;
  } parts[] = {{"sleep_share", m.sleep, t.sleep_ns}, {"pipe_share", m.pipe, t.pipe_ns},
               {"burn_share", m.burn, t.burn_cpu_ns}};
  for (const auto& p : parts) {
    double share = measured > 0 ? p.got / measured : 0, truth = p.truth / whole;
    report_figure(p.name, share - truth);
    EXPECT_NEAR(share, truth, 0.03) << p.name << "\n" << dump(stacks);
  }
  // And the three add up to the time they took.
  report_figure("measured_of_truth", measured / (whole / 1000));
  EXPECT_NEAR(measured, whole / 1000, 0.10 * whole / 1000);
}

}  // namespace
}  // namespace ember::e2e
