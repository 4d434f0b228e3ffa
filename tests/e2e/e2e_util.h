// Helpers for end-to-end tests: run commands, read files, parse folded
// stacks. The tests run the real `ember` binary as root against real BPF.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ember::e2e {

inline std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name; }
inline std::string ember_bin() { return EMBER_BINARY; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ember-e2e-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// A child process whose stdout/stderr go to files.
class Proc {
 public:
  Proc(std::vector<std::string> argv, const std::string& out_file = "/dev/null",
       const std::string& err_file = "/dev/null") {
    pid_ = fork();
    if (pid_ == 0) {
      int o = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      // A fresh process group, so a test's SIGINT reaches only this tree.
      setpgid(0, 0);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~Proc() {
    if (pid_ > 0 && !done_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void signal(int sig) { kill(pid_, sig); }
  // Waits up to `timeout`; returns the exit code, or -1 on timeout.
  int wait(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        done_ = true;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
};

inline RunResult run(std::vector<std::string> argv,
                     std::chrono::seconds timeout = std::chrono::seconds(120)) {
  TempDir tmp;
  RunResult r;
  {
    Proc p(std::move(argv), tmp / "out", tmp / "err");
    r.exit_code = p.wait(timeout);
  }
  r.out = read_file(tmp / "out");
  r.err = read_file(tmp / "err");
  return r;
}

struct FoldedStack {
  std::vector<std::string> frames;  // root first
  uint64_t count = 0;
  bool contains(const std::string& f) const {
    for (const auto& x : frames)
      if (x == f) return true;
    return false;
  }
  // True if `chain` appears as consecutive frames.
  bool has_chain(const std::vector<std::string>& chain) const {
    if (chain.size() > frames.size()) return false;
    for (size_t i = 0; i + chain.size() <= frames.size(); ++i) {
      bool ok = true;
      for (size_t j = 0; j < chain.size() && ok; ++j) ok = frames[i + j] == chain[j];
      if (ok) return true;
    }
    return false;
  }
};

inline std::vector<FoldedStack> parse_folded(const std::string& text) {
  std::vector<FoldedStack> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    FoldedStack s;
    s.count = std::stoull(line.substr(sp + 1));
    std::string frames = line.substr(0, sp);
    size_t start = 0;
    for (;;) {
      size_t semi = frames.find(';', start);
      s.frames.push_back(frames.substr(start, semi - start));
      if (semi == std::string::npos) break;
      start = semi + 1;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Prints a figure a test asserts on, one line per figure, for
// scripts/flake_report.py (minimum and maximum over repeated runs):
//   [ figure ] Suite.Test name=value
inline void report_figure(const std::string& name, double value) {
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::printf("[ figure ] %s.%s %s=%.6g\n", t ? t->test_suite_name() : "?", t ? t->name() : "?",
              name.c_str(), value);
  std::fflush(stdout);
}

// CPU time (user + system) a process has used so far, in seconds; -1 if it
// is gone. What a sampler at F Hz should see of it is this times F, however
// busy the machine is.
inline double process_cpu_seconds(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return -1;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i < 14; ++i) in >> field;  // state .. cmajflt; then utime, stime
  unsigned long long utime = 0, stime = 0;
  if (!(in >> utime >> stime)) return -1;
  return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// Polls `done` every 100 ms until it holds or `timeout` passes; returns its
// last answer. Tests wait for the amount of work they judge (samples, CPU
// time) instead of a fixed wall time, so a busy machine makes them slower,
// never wrong: on 2 CPUs a concurrent build can halve a workload's share.
template <typename Pred>
bool wait_until(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// Direct children of `pid` (from /proc/*/stat), e.g. the command `ember
// record -- CMD` started.
inline std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& ent : std::filesystem::directory_iterator("/proc")) {
    std::string name = ent.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = read_file(ent.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 > stat.size()) continue;
    std::istringstream in(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    if (in >> state >> ppid && ppid == pid) out.push_back(pid_t(std::stol(name)));
  }
  return out;
}

// Checks part/whole against a bound and reports it as a figure, so repeated
// runs show how close each test comes to its threshold.
inline void expect_share_at_least(const std::string& name, double part, double whole, double bound) {
  double share = whole > 0 ? part / whole : 0;
  report_figure(name, share);
  EXPECT_GE(share, bound) << name << ": " << part << " of " << whole;
}
inline void expect_share_at_most(const std::string& name, double part, double whole, double bound) {
  double share = whole > 0 ? part / whole : 0;
  report_figure(name, share);
  EXPECT_LE(share, bound) << name << ": " << part << " of " << whole;
}
// The share of `whole` samples that land where a workload spends `truth` of
// its time is binomial: its standard deviation is sqrt(truth (1 - truth) /
// whole). Allowing 4.5 of them makes a false failure rarer than 1 in 100,000
// per check, and still catches a bias of a few points at thousands of
// samples (calibrated on repeated runs: scripts/flake_report.py).
inline void expect_share_binomial(const std::string& name, double part, double whole, double truth) {
  double share = whole > 0 ? part / whole : 0;
  double tolerance = std::max(0.01, 4.5 * std::sqrt(truth * (1 - truth) / std::max(whole, 1.0)));
  report_figure(name, share);
  EXPECT_NEAR(share, truth, tolerance) << name << ": " << part << " of " << whole;
}

// What a profile of short-lived processes (comm `comm`) got right. User
// samples are those whose innermost frame is in user space (taken after the
// exec, in the program, its libraries or the dynamic loader); kernel-mode
// samples of exec and exit are not counted. A stack is:
//   - named: no frame is `module+0x...` or [unknown];
//   - complete: the walk reached the program's start (_start under the
//     thread name).
struct ShortLivedFigures {
  uint64_t user = 0, named = 0, complete = 0, named_and_complete = 0;
  uint64_t loader = 0;          // in the dynamic loader (named from its debug file)
  uint64_t loader_unnamed = 0;  // ... shown as ld-linux-x86-64.so.2+0x...
  uint64_t symbol_poor = 0;     // with a frame shown as module+0x... (placed, not named)
  uint64_t unplaced = 0;        // with a frame shown as [unknown] (in no mapping known)
  std::vector<std::string> bad;  // a few stacks that were not named and complete
};

inline bool is_kernel_frame(const std::string& f) {
  return f.size() > 4 && f.compare(f.size() - 4, 4, "_[k]") == 0;
}

inline ShortLivedFigures judge_short_lived(const std::vector<FoldedStack>& stacks, const std::string& comm,
                                           const std::vector<std::string>& loader_functions = {
                                               "_dl_start", "_dl_start_final", "_dl_sysdep_start",
                                               "dl_main", "_dl_relocate_object", "_dl_map_object"}) {
  ShortLivedFigures f;
  for (const auto& s : stacks) {
    if (s.frames.size() < 2 || s.frames[0] != comm || is_kernel_frame(s.frames.back())) continue;
    f.user += s.count;
    bool named = true, loader_unnamed = false, loader = false, poor = false, unplaced = false;
    for (size_t i = 1; i < s.frames.size(); ++i) {
      const auto& x = s.frames[i];
      poor |= x.find("+0x") != std::string::npos;
      unplaced |= x == "[unknown]";
      if (poor || unplaced) named = false;
      if (x.rfind("ld-linux", 0) == 0) loader_unnamed = true;
      for (const auto& l : loader_functions) loader |= x == l;
    }
    bool complete = s.frames[1] == "_start";
    if (named) f.named += s.count;
    if (poor) f.symbol_poor += s.count;
    if (unplaced) f.unplaced += s.count;
    if (complete) f.complete += s.count;
    if (named && complete) {
      f.named_and_complete += s.count;
    } else if (f.bad.size() < 8) {
      std::string t;
      for (const auto& x : s.frames) t += x + ";";
      f.bad.push_back(t + " " + std::to_string(s.count));
    }
    if (loader || loader_unnamed) f.loader += s.count;
    if (loader_unnamed) f.loader_unnamed += s.count;
  }
  return f;
}

// The sum of a counter's series as `ember record -v` prints them on stderr
// ("ember:   name{labels} value"); 0 if none is printed (zero counters are not).
inline uint64_t counter_in(const std::string& verbose_err, const std::string& name) {
  uint64_t sum = 0;
  std::istringstream in(verbose_err);
  std::string line, prefix = "ember:   " + name + "{";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    auto sp = line.rfind(' ');
    if (sp != std::string::npos) sum += std::stoull(line.substr(sp + 1));
  }
  return sum;
}

inline bool have_program(const std::string& name) {
  return system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace ember::e2e
