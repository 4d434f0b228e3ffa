// Helpers for end-to-end tests: run commands, read files, parse folded
// stacks. The tests run the real `ember` binary as root against real BPF.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

inline bool have_program(const std::string& name) {
  return system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace ember::e2e
