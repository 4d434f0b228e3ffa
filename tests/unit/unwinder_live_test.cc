// The reference unwinder on live processes without frame pointers: the
// fixture is stopped with ptrace at arbitrary instructions, and each stack is
// walked with our tables from its registers and memory. No BPF involved; this
// is the check that the tables are right where it matters.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "agent/unwind/process_rules.h"
#include "agent/unwind/unwinder.h"
#include "symbolizer/symbolizer.h"

namespace ember::unwind {
namespace {

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

class ProcMemory final : public Memory {
 public:
  explicit ProcMemory(pid_t pid)
      : fd_(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC)) {}
  bool read(uint64_t addr, void* out, size_t n) const override {
    return ::pread(fd_.get(), out, n, off_t(addr)) == ssize_t(n);
  }

 private:
  UniqueFd fd_;
};

// Runs `unwind_target MODE`, and samples one of its threads with ptrace.
class Target {
 public:
  explicit Target(const std::string& binary, const char* mode) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      execl(binary.c_str(), binary.c_str(), mode, nullptr);
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[64];
    ready_ = f && fgets(line, sizeof(line), f) && std::string(line) == "ready\n";
    if (f) fclose(f);
  }
  ~Target() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    // Traced threads must be reaped (with __WALL) before their leader can be.
    for (;;) {
      pid_t r = waitpid(-1, nullptr, __WALL);
      if (r == pid_ || (r < 0 && errno != EINTR)) break;
    }
  }
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }

  // The busiest thread other than main if `other_thread`, else main.
  pid_t pick_thread(bool other_thread) const {
    if (!other_thread) return pid_;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task")) {
      pid_t tid = std::stoi(e.path().filename().string());
      if (tid != pid_) return tid;
    }
    return pid_;
  }

  // Stops `tid`, reads its registers, runs `fn`, resumes it.
  template <class Fn>
  bool with_stopped(pid_t tid, Fn fn) {
    if (!seized_.count(tid)) {
      if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) return false;
      seized_.insert(tid);
    }
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) return false;
    int status = 0;
    if (waitpid(tid, &status, __WALL) != tid) return false;
    user_regs_struct r{};
    bool ok = ptrace(PTRACE_GETREGS, tid, 0, &r) == 0;
    if (ok) {
      Registers regs;
      regs.ip = r.rip;
      regs.sp = r.rsp;
      regs.bp = r.rbp;
      uint64_t g[16] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp,
                        r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
      for (int i = 0; i < 16; ++i) regs.gpr[size_t(i)] = g[i];
      regs.have_gpr = true;
      fn(regs);
    }
    ptrace(PTRACE_CONT, tid, 0, 0);
    return ok;
  }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
  std::set<pid_t> seized_;
};

struct Sampled {
  int samples = 0, complete = 0;
  std::vector<std::vector<std::string>> stacks;  // symbolized, innermost first
  std::map<std::string, int> stops;
};

Sampled sample_target(const char* binary, const char* mode, bool other_thread, int n = 40) {
  Sampled s;
  Target t(fixture(binary), mode);
  EXPECT_TRUE(t.ready()) << binary << " " << mode;
  if (!t.ready()) return s;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto snap = read_process_snapshot("/proc", t.pid());
  EXPECT_TRUE(snap.ok());
  if (!snap.ok()) return s;
  std::shared_ptr<const ProcessSnapshot> proc = std::move(*snap);
  UnwindTableCache cache({});
  ProcessRuleSource rules(proc, cache);
  Symbolizer sym(SymbolizerOptions{});
  ProcMemory mem(t.pid());
  pid_t tid = t.pick_thread(other_thread);
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3 + i % 7));
    t.with_stopped(tid, [&](const Registers& regs) {
      UnwindResult r = unwind(regs, mem, rules, 128);
      ++s.samples;
      s.stops[stop_reason_name(r.stop)]++;
      if (r.stop == StopReason::kEndOfStack) ++s.complete;
      std::vector<std::string> names;
      for (size_t f = 0; f < r.pcs.size(); ++f) {
        UserSymbol us = sym.resolve_user(*proc, r.pcs[f], r.is_return[f]);
        names.push_back(!us.function.empty() ? us.function : us.module + "+?");
      }
      s.stacks.push_back(std::move(names));
    });
  }
  return s;
}

int count(const std::vector<std::string>& stack, const std::string& fn) {
  int n = 0;
  for (const auto& f : stack) n += f == fn;
  return n;
}

// Frames `chain` appear in this order (innermost first), not necessarily adjacent.
bool in_order(const std::vector<std::string>& stack, const std::vector<std::string>& chain) {
  size_t i = 0;
  for (const auto& f : stack)
    if (i < chain.size() && f == chain[i]) ++i;
  return i == chain.size();
}

std::string show(const std::vector<std::string>& stack) {
  std::string s;
  for (const auto& f : stack) s += f + " <- ";
  return s;
}

void report(const char* what, const Sampled& s) {
  std::string stops;
  for (const auto& [k, v] : s.stops) stops += k + "=" + std::to_string(v) + " ";
  std::printf("[ info ] %s: %d samples, %d complete (%s)\n", what, s.samples, s.complete, stops.c_str());
}

class LiveUnwind : public ::testing::TestWithParam<const char*> {};

TEST_P(LiveUnwind, DeepRecursionReachesTheStartOfTheStack) {
  Sampled s = sample_target(GetParam(), "recurse", false);
  report("recurse", s);
  ASSERT_GT(s.samples, 30);
  EXPECT_EQ(s.complete, s.samples);
  for (const auto& st : s.stacks) {
    EXPECT_GE(count(st, "recurse"), 100) << show(st);
    EXPECT_TRUE(in_order(st, {"spin", "recurse", "main"})) << show(st);
    EXPECT_EQ(st.back(), "_start") << show(st);
  }
}

TEST_P(LiveUnwind, CallbackThroughLibcQsortReachesMain) {
  Sampled s = sample_target(GetParam(), "qsort", false);
  report("qsort", s);
  ASSERT_GT(s.samples, 30);
  EXPECT_EQ(s.complete, s.samples);
  int through_libc = 0;
  for (const auto& st : s.stacks) {
    EXPECT_TRUE(in_order(st, {"sort_numbers", "main", "_start"})) << show(st);
    if (in_order(st, {"compare_slow", "qsort_r", "sort_numbers", "main"}) ||
        in_order(st, {"compare_slow", "qsort", "sort_numbers", "main"}))
      ++through_libc;
  }
  // Nearly all time is in the comparator, called from inside libc.
  EXPECT_GE(through_libc, s.samples * 8 / 10);
}

TEST_P(LiveUnwind, ThreadStacksEndAtClone) {
  Sampled s = sample_target(GetParam(), "thread", true);
  report("thread", s);
  ASSERT_GT(s.samples, 30);
  EXPECT_EQ(s.complete, s.samples);
  for (const auto& st : s.stacks) EXPECT_TRUE(in_order(st, {"spin", "thread_main"})) << show(st);
}

TEST_P(LiveUnwind, SignalHandlerUnwindsIntoTheInterruptedCode) {
  Sampled s = sample_target(GetParam(), "signal", false);
  report("signal", s);
  ASSERT_GT(s.samples, 30);
  EXPECT_EQ(s.complete, s.samples);
  for (const auto& st : s.stacks)
    EXPECT_TRUE(in_order(st, {"spin", "handler", "wait_for_signal", "main", "_start"})) << show(st);
}

INSTANTIATE_TEST_SUITE_P(Builds, LiveUnwind,
                         ::testing::Values("unwind_nofp", "unwind_nofp_g", "unwind_split"));

}  // namespace
}  // namespace ember::unwind
